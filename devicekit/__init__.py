"""devicekit: take a PyTorch face-tracking model from a checkpoint to a phone.

The public library surface is small; the CLI (``devicekit.cli``) is a thin
layer over it. Heavy dependencies (torch, tensorflow, onnx2tf, coremltools)
are imported only inside the steps that need them, so ``check``, ``bench``,
``report`` and ``devices`` run without them.
"""

__version__ = "0.1.0"
