"""Load a model from any supported source into one shape the targets share.

Sources: ``zoo:NAME``, a ``torch.export`` program (``.pt2``), a TorchScript
file (``.pt``/``.ts``, needs an input shape), a state dict plus ``--arch
module:Class``, or an ``.onnx`` file. Checkpoints load with
``torch.load(weights_only=True)``; one that needs full unpickling is refused
unless the user passes ``--trust-checkpoint``. User files are never modified.
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devicekit.config import InputSpec
from devicekit.errors import InputError, ModelMismatchError, UntrustedCheckpointError, UsageError, first_line
from devicekit.landmarks import layout_for


@dataclass
class LoadedModel:
    """A model ready for conversion.

    ``module`` is an eval-mode ``torch.nn.Module`` (or callable ``torch.export``
    module) for PyTorch sources; ``onnx_path`` is set for ONNX sources.
    ``info`` becomes the manifest's ``model`` block.
    """

    name: str
    source: str
    spec: InputSpec
    info: dict
    module: Any = None
    onnx_path: Path | None = None
    output_names: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)  # per-conversion intermediates (ONNX, SavedModel)

    @property
    def is_torch(self) -> bool:
        return self.module is not None

    def run_torch(self, x):
        """Run the PyTorch model on an NCHW float32 numpy batch -> list of numpy outputs."""
        import numpy as np
        import torch

        with torch.no_grad():
            out = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        return [o.detach().cpu().numpy() for o in outs]

    def run_reference(self, x):
        """The original model's outputs for an NCHW float32 batch: PyTorch, or onnxruntime for an ONNX source."""
        if self.is_torch:
            return self.run_torch(x)
        import onnxruntime as ort

        sess = self.cache.get("_ort") or ort.InferenceSession(str(self.onnx_path), providers=["CPUExecutionProvider"])
        self.cache["_ort"] = sess
        return sess.run(None, {sess.get_inputs()[0].name: x})


def _model_info(name: str, source: str, task: str, landmarks: int | None) -> dict:
    info = {"name": name, "source": source, "task": task, "landmarks": landmarks}
    if landmarks:
        info["layout"] = layout_for(landmarks)["name"]
        info["coords"] = "input_pixels"
    return info


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a model file")
    if path.stat().st_size == 0:
        raise InputError(f"{path} is empty (0 bytes)")


def load_model(
    source: str,
    *,
    spec: InputSpec | None = None,
    spec_overrides: dict | None = None,
    arch: str | None = None,
    arch_args: dict | str | None = None,
    trust_checkpoint: bool = False,
    landmarks: int | None = None,
    name: str | None = None,
    weights: str = "shipped",
) -> LoadedModel:
    """Load ``source`` (see module docstring). ``spec_overrides`` are the CLI's input flags."""
    overrides = {k: v for k, v in (spec_overrides or {}).items() if v is not None}
    if source.startswith("zoo:"):
        return _load_zoo(source[4:], overrides, weights)
    path = Path(source)
    _check_file(path)
    suffix = path.suffix.lower()
    stem = name or path.stem
    if suffix == ".onnx":
        return _load_onnx(path, stem, spec, overrides, landmarks)
    if suffix == ".pt2":
        return _load_export(path, stem, spec, overrides, landmarks)
    if suffix in (".pt", ".pth", ".ts", ".ckpt", ".bin"):
        if arch:
            return _load_state_dict(path, stem, arch, arch_args, trust_checkpoint, spec, overrides, landmarks)
        return _load_torchscript(path, stem, spec, overrides, landmarks, trust_checkpoint)
    raise InputError(
        f"{path.name}: unsupported model file type {suffix or '(no extension)'!r}",
        hint="give zoo:NAME, a .pt2 (torch.export), a .pt/.ts TorchScript file, a state dict with --arch, or an .onnx",
    )


def _spec(base: InputSpec | None, overrides: dict, what: str) -> InputSpec:
    if base is None:
        if "shape" not in overrides:
            raise UsageError(f"{what} needs --input-shape N,C,H,W")
        c = overrides["shape"][1]
        base = InputSpec(shape=overrides["shape"], color=overrides.get("color", "gray" if c == 1 else "rgb"))
    return base.with_overrides(**overrides)


ZOO_SEED = 0  # zoo models without shipped weights are initialised from this seed


def _load_zoo(name: str, overrides: dict, weights: str) -> LoadedModel:
    import torch

    from devicekit import zoo

    entry = zoo.get(name)
    spec = entry.input.with_overrides(**overrides)
    if spec.shape != entry.input.shape:
        raise UsageError(f"zoo:{name} takes input {list(entry.input.shape)}; --input-shape cannot change it")
    with torch.random.fork_rng():  # the same random-init model in every process and run (and the caller's RNG untouched)
        torch.manual_seed(ZOO_SEED)
        module = entry.build()
    trained = False
    if weights == "shipped" and entry.weights_path:
        state = torch.load(entry.weights_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
        trained = True
    elif weights not in ("shipped", "random"):
        raise UsageError(f"--weights must be shipped or random, got {weights!r}")
    module.eval()
    info = _model_info(name, f"zoo:{name}", entry.task, entry.landmarks)
    info["weights"] = "trained" if trained else "random-init"
    info["seed_paper"] = entry.seed
    info.update(entry.info)
    return LoadedModel(name, f"zoo:{name}", spec, info, module=module, output_names=list(entry.outputs))


PICKLE_PROTOCOL_BYTE = 0x80  # a legacy (non-zip) torch.save file starts with pickle's PROTO opcode


def _torch_load(path: Path, trust: bool):
    import pickle

    import torch

    with open(path, "rb") as fh:
        head = fh.read(2)
    if not _is_zip(path) and not (len(head) == 2 and head[0] == PICKLE_PROTOCOL_BYTE and 2 <= head[1] <= 5):
        raise InputError(f"{path.name}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle)")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols of a damaged file before failing
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or "WeightsUnpickler" in str(exc):
            raise UntrustedCheckpointError(
                f"{path.name} needs full unpickling, which can run arbitrary code; refused",
                hint="re-save it as a state dict, or pass --trust-checkpoint if you trust its origin",
            ) from None
        raise InputError(f"{path.name}: not a PyTorch checkpoint ({first_line(exc, 200)})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged archive or pickle stream fails with whatever the reader
        # tripped over (KeyError: 101, struct.error, AssertionError, BadZipFile, ...): all of them mean "unreadable"
        raise InputError(f"{path.name}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, 200)})") from None


def _is_zip(path: Path) -> bool:
    try:
        return zipfile.is_zipfile(path)
    except (zipfile.BadZipFile, OSError, ValueError):  # e.g. "zipfiles that span multiple disks": not one we read
        return False


ARCH_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


def arch_class(arch: str):
    """``--arch package.module:Class`` -> the class, which must be a ``torch.nn.Module`` subclass.

    Only that shape is accepted (no ``module:function``, no attribute paths): ``os:system`` or
    ``builtins:eval`` are refused before anything is called. The module named is imported (the user named it
    on the command line; devicekit.toml cannot: config.COMMAND_LINE_ONLY).
    """
    import torch

    if not isinstance(arch, str) or not ARCH_RE.fullmatch(arch):
        raise UsageError(f"--arch must be package.module:Class, got {arch!r}")
    mod_name, cls_name = arch.split(":", 1)
    try:
        obj = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"--arch {arch}: cannot import ({first_line(exc, 200)})") from None
    except Exception as exc:  # noqa: BLE001 - the user's module raised while importing
        raise UsageError(f"--arch {arch}: importing {mod_name} failed ({type(exc).__name__}: {first_line(exc, 200)})") from None
    if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
        what = f"a {type(obj).__name__}" if not isinstance(obj, type) else f"class {obj.__name__}, not a torch.nn.Module"
        raise UsageError(f"--arch {arch} is {what}", hint="--arch names a torch.nn.Module subclass: package.module:Class")
    return obj


def _load_state_dict(path, stem, arch, arch_args, trust, spec, overrides, landmarks) -> LoadedModel:
    cls = arch_class(arch)
    if isinstance(arch_args, str):
        try:
            arch_args = json.loads(arch_args) if arch_args.strip() else {}
        except json.JSONDecodeError as exc:
            raise UsageError(f"--arch-args must be a JSON object ({exc})") from None
    if arch_args is not None and not isinstance(arch_args, dict):
        raise UsageError("--arch-args must be a JSON object")
    try:
        module = cls(**(arch_args or {}))
    except Exception as exc:  # noqa: BLE001 - the user's constructor: TypeError for bad kwargs, anything else it raises
        raise UsageError(f"--arch {arch} with --arch-args {arch_args}: {type(exc).__name__}: {first_line(exc, 200)}") from None
    state = _torch_load(path, trust)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path.name} does not hold a state dict (found {type(state).__name__})")
    result = module.load_state_dict(state, strict=False)
    shape_errors = []
    own = module.state_dict()
    for k, v in state.items():
        if k in own and hasattr(v, "shape") and tuple(own[k].shape) != tuple(v.shape):
            shape_errors.append(f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}")
    if result.missing_keys or result.unexpected_keys or shape_errors:
        parts = []
        if result.missing_keys:
            parts.append(f"missing {len(result.missing_keys)} key(s) e.g. {', '.join(result.missing_keys[:3])}")
        if result.unexpected_keys:
            parts.append(f"unexpected {len(result.unexpected_keys)} key(s) e.g. {', '.join(result.unexpected_keys[:3])}")
        if shape_errors:
            parts.append(f"shape mismatch {', '.join(shape_errors[:2])}")
        raise ModelMismatchError(f"{path.name} does not fit {arch}: " + "; ".join(parts))
    module.eval()
    spec = _spec(spec, overrides, f"{path.name} (state dict)")
    lm = landmarks if landmarks is not None else getattr(module, "num_landmarks", None)
    return LoadedModel(stem, str(path), spec, _model_info(stem, str(path), "landmarks" if lm else "unknown", lm), module=module)


def _load_torchscript(path, stem, spec, overrides, landmarks, trust) -> LoadedModel:
    import torch

    if not _is_zip(path):
        raise InputError(f"{path.name}: not a TorchScript archive or PyTorch checkpoint")
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except RuntimeError as exc:
        msg = first_line(exc, 200)
        if "constants.pkl" in msg or "PytorchStreamReader" in msg or "file not found" in msg:
            # a zip checkpoint that is not TorchScript: most likely a state dict
            state = _torch_load(path, trust)
            kind = "a state dict" if isinstance(state, dict) else type(state).__name__
            raise UsageError(f"{path.name} holds {kind}, not TorchScript", hint="pass --arch package.module:Class") from None
        raise InputError(f"{path.name}: TorchScript file does not load ({msg})") from None
    module.eval()
    spec = _spec(spec, overrides, f"{path.name} (TorchScript)")
    return LoadedModel(stem, str(path), spec, _model_info(stem, str(path), "landmarks" if landmarks else "unknown", landmarks), module=module)


def _load_export(path, stem, spec, overrides, landmarks) -> LoadedModel:
    import logging

    import torch

    if not _is_zip(path):
        raise InputError(f"{path.name}: not a torch.export archive (not a zip file; truncated or another format?)")
    log = logging.getLogger("torch.export")
    level = log.level
    log.setLevel(logging.CRITICAL)  # torch logs a traceback before raising on a broken archive
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a broken archive
        raise InputError(f"{path.name}: not a readable torch.export program ({first_line(exc, 200)})") from None
    finally:
        log.setLevel(level)
    inputs = [s for s in ep.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    if len(inputs) != 1:
        raise InputError(f"{path.name}: expected one image input, the program has {len(inputs)}")
    node = next(n for n in ep.graph.nodes if n.op == "placeholder" and n.name == inputs[0].arg.name)
    shape = tuple(int(d) for d in node.meta["val"].shape)
    if len(shape) != 4:
        raise InputError(f"{path.name}: the input has shape {list(shape)}, expected N,C,H,W")
    if "shape" in overrides and tuple(overrides["shape"]) != shape:
        raise ModelMismatchError(f"--input-shape {list(overrides['shape'])} does not fit {path.name}, whose input is {list(shape)}")
    overrides = {**overrides, "shape": shape}
    spec = _spec(spec, overrides, path.name)
    module = ep.module()
    return LoadedModel(stem, str(path), spec, _model_info(stem, str(path), "landmarks" if landmarks else "unknown", landmarks), module=module)


def _load_onnx(path, stem, spec, overrides, landmarks) -> LoadedModel:
    import onnx

    from devicekit.runtime.verdict import ask

    # the onnx checker and onnxruntime in a child first: their C++ dies on some hostile graphs (a Conv with
    # strides 0 is a SIGFPE in shape inference), and this process goes on to run the model
    verdict = ask(path)
    if not verdict.get("ok"):
        if verdict.get("stage") in ("session", "run"):
            raise InputError(f"{path.name}: {verdict.get('runtime')} cannot {'load' if verdict['stage'] == 'session' else 'run'} "
                             f"it ({verdict.get('error')}); convert runs the original in it for the reference outputs")
        raise InputError(f"{path.name}: not a valid ONNX model ({verdict.get('error')})")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - onnx raises DecodeError, ValidationError, ...
        raise InputError(f"{path.name}: not a valid ONNX model ({first_line(exc, 200)})") from None
    init = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in init]
    if len(inputs) != 1:
        raise InputError(f"{path.name}: expected one image input, the model has {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4:
        raise InputError(f"{path.name}: the input has rank {len(dims)}, expected N,C,H,W")
    if None not in dims:
        if "shape" in overrides and tuple(overrides["shape"]) != tuple(dims):
            raise ModelMismatchError(f"--input-shape {list(overrides['shape'])} does not fit {path.name}, whose input is {dims}")
        overrides = {**overrides, "shape": tuple(dims)}
    spec = _spec(spec, overrides, path.name)
    outs = [o.name for o in model.graph.output]
    return LoadedModel(stem, str(path), spec, _model_info(stem, str(path), "landmarks" if landmarks else "unknown", landmarks), onnx_path=path, output_names=outs)


def check_input_shape(model: LoadedModel) -> list:
    """Run the model once on zeros of the spec's shape; a mismatch is a clear error."""
    import numpy as np

    x = np.zeros(model.spec.shape, np.float32)
    try:
        if model.is_torch:
            return model.run_torch(x)
        import onnxruntime as ort

        sess = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
        return sess.run(None, {sess.get_inputs()[0].name: x})
    except Exception as exc:  # noqa: BLE001 - shape errors surface as many exception types
        raise ModelMismatchError(
            f"input shape {list(model.spec.shape)} does not fit {model.name} ({first_line(exc, 200)})",
            hint="fix --input-shape N,C,H,W",
        ) from None
