"""verify: the converted model against its PyTorch reference on real faces.

Library API: ``quick_verify`` (what ``convert`` calls), ``run_verify`` (what the
CLI calls), the metrics in ``metrics``, the 1-euro filter in ``one_euro``.
"""

from ..face.one_euro import DEFAULT_PARAMS, OneEuroFilter
from .core import check_gates, evaluate, prepare_faces, public, quick_verify

__all__ = ["DEFAULT_PARAMS", "OneEuroFilter", "check_gates", "evaluate", "prepare_faces", "public", "quick_verify", "run_verify"]


def __getattr__(name):
    if name == "run_verify":
        from .run import run_verify

        return run_verify
    raise AttributeError(name)
