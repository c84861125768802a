"""facenet-pytorch's MTCNN nets (PNet, RNet, ONet) with their trained weights, from the PyPI wheel.

The wheel's ``models/mtcnn.py`` defines the nets; its one relative import
(the detection helpers, which pull in torchvision) is dropped before the
source is run, so the classes are the package's own, unmodified. Weights load
with ``torch.load(weights_only=True)`` from the wheel's ``data/*.pt``.
"""

from __future__ import annotations

import types
from pathlib import Path

from fetched import fetched

INPUT_SIZE = {"pnet": 12, "rnet": 24, "onet": 48}
# MTCNN's own preprocessing (facenet_pytorch.models.utils.detect_face): (pixel - 127.5) * 0.0078125
MEAN, STD = 127.5, 128.0


def _module(folder: Path) -> types.ModuleType:
    src = (folder / "mtcnn.py").read_text()
    src = "\n".join(ln for ln in src.splitlines() if not ln.startswith("from .utils"))
    mod = types.ModuleType("facenet_pytorch_mtcnn")
    exec(compile(src, str(folder / "mtcnn.py"), "exec"), mod.__dict__)  # noqa: S102 - the wheel's own model code
    return mod


def net(name: str = "onet"):
    """An eval-mode MTCNN net (``pnet``, ``rnet`` or ``onet``) with the wheel's trained weights."""
    import torch

    folder = fetched("fetch_test_models", "fetch_mtcnn")
    cls = getattr(_module(folder), {"pnet": "PNet", "rnet": "RNet", "onet": "ONet"}[name])
    m = cls(pretrained=False)
    m.load_state_dict(torch.load(folder / f"{name}.pt", weights_only=True))
    return m.eval()


def save_torchscript(path: Path, name: str = "onet") -> Path:
    """``torch.jit.trace`` of the net at its input size, as a user would save it."""
    import torch

    s = INPUT_SIZE[name]
    torch.jit.trace(net(name), torch.zeros(1, 3, s, s)).save(str(path))
    return path


def save_pt2(path: Path, name: str = "onet") -> Path:
    import torch

    s = INPUT_SIZE[name]
    torch.export.save(torch.export.export(net(name), (torch.zeros(1, 3, s, s),)), str(path))
    return path
