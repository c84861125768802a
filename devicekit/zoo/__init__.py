"""The model zoo: real PyTorch modules of the seed architectures.

The registry is data and imports no torch; ``build()`` imports the module.
Facts about a model (input spec, landmark layout, outputs) live here and
travel into every artifact's manifest.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

from ..config import InputSpec
from ..errors import InputError


@dataclass(frozen=True)
class ZooEntry:
    name: str
    seed: str
    factory: str  # "module:Class" under devicekit.zoo
    kwargs: dict
    input: InputSpec
    task: str  # landmarks | landmarks3d | parsing
    outputs: tuple[str, ...]
    landmarks: int | None
    summary: str
    paper: dict = field(default_factory=dict)  # numbers the seed paper gives
    weights: str | None = None  # shipped checkpoint under devicekit/data, if any
    info: dict = field(default_factory=dict)  # extra facts for the manifest (e.g. heatmap stride)

    def build(self):
        module, cls = self.factory.split(":")
        mod = importlib.import_module(f"{__name__}.{module}")
        return getattr(mod, cls)(**self.kwargs)

    @property
    def weights_path(self) -> Path | None:
        if not self.weights:
            return None
        p = Path(__file__).resolve().parent.parent / "data" / self.weights
        return p if p.exists() else None


_RGB128 = InputSpec(shape=(1, 3, 128, 128), mean=(127.5,), std=(128.0,), color="rgb")
_GRAY96 = InputSpec(shape=(1, 1, 96, 96), mean=(0.0,), std=(255.0,), color="gray")

ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry(
            "heatmap2s",
            "000",
            "heatmap2s:Heatmap2S",
            {"num_landmarks": 68, "input_size": 128},
            _RGB128,
            "landmarks",
            ("landmarks",),
            68,
            "two-stage heatmap tracker: MobileNetV2 backbone, soft-argmax, RoIAlign + group-conv refinement",
            paper={"params": 158091, "madd": 173.69e6, "size_kb": 607, "landmarks": 65},
            weights="heatmap2s_ibug68.pt",
            info={"heatmap_stride": 4, "coarse_heatmap_stride": 8},
        ),
        ZooEntry(
            "mesh3d",
            "001",
            "mesh3d:Mesh3D",
            {"num_landmarks": 68, "input_size": 192},
            InputSpec(shape=(1, 3, 192, 192), mean=(127.5,), std=(127.5,), color="rgb"),
            "landmarks3d",
            ("landmarks", "confidence"),
            68,
            "FaceMesh-style residual 3D landmark regressor (PReLU, max-pool shortcuts)",
            paper={"params": 264317, "size_mb": 1.2},
        ),
        ZooEntry(
            "hourglass-parser",
            "002",
            "hourglass:MobileHourglass",
            {"num_classes": 11, "input_size": 128},
            _RGB128,
            "parsing",
            ("logits",),
            None,
            "Mobile Hourglass face parser: MobileNetV2 blocks in an encoder-decoder, 11 classes",
            paper={"params": 0.27e6},
        ),
        ZooEntry(
            "shufflenet-reg",
            "003",
            "shufflenet:ShuffleNetReg",
            {"num_landmarks": 68, "input_size": 112},
            InputSpec(shape=(1, 3, 112, 112), mean=(127.5,), std=(128.0,), color="rgb"),
            "landmarks",
            ("landmarks",),
            68,
            "ShuffleNetV2 0.5x landmark regressor (wing loss in training)",
        ),
        *[
            ZooEntry(
                f"basiccnn-pool{k}",
                "004",
                "basiccnn:BasicCNN",
                {"pools": k, "num_landmarks": 68},
                _GRAY96,
                "landmarks",
                ("landmarks",),
                68,
                f"basic CNN, {k} max-pool{'s' if k > 1 else ''}, FC 1000/500/136 on 96x96 gray",
                paper={"size_mb": {1: 518, 2: 120, 3: 32.5}[k]},
            )
            for k in (1, 2, 3)
        ],
    ]
}

DEFAULT_MODEL = "heatmap2s"


def get(name: str) -> ZooEntry:
    try:
        return ZOO[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, ZOO, n=1)
        hint = f"did you mean zoo:{close[0]}?" if close else f"known: {', '.join(ZOO)}"
        raise InputError(f"unknown zoo model {name!r}", hint=hint) from None
