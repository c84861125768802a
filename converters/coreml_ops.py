"""Torch op conversions devicekit gives coremltools where its own refuse a third-party graph.

Registered (``override=True``) when a CoreML target runs, before ``ct.convert``:

- ``prelu`` on any rank with per-channel alpha. coremltools' MIL ``prelu``
  takes per-channel alpha only on rank 4 ([N, C, H, W]); its converter lifts
  a rank-2 input to rank 3, which then fails ("rank 3 or rank 5 input is only
  supported when all the values of alpha are same"): MTCNN's PReLU after a
  Linear. Here every rank is lifted or folded to rank 4 with the channel
  axis kept at 1, run through the same ``prelu`` op, and put back: exact.
"""

from __future__ import annotations

import numpy as np

_registered = False


def register() -> None:
    """Install the conversions once per process."""
    global _registered
    if _registered:
        return
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend.torch.ops import _get_inputs
    from coremltools.converters.mil.frontend.torch.torch_op_registry import register_torch_op

    @register_torch_op(override=True)
    def prelu(context, node):
        x, alpha = _get_inputs(context, node, expected=2)
        a = np.asarray(alpha.val, np.float32).reshape(-1)
        if x.rank < 2:  # no channel axis: PyTorch allows one alpha only
            res = (
                mb.maximum(x=x, y=mb.mul(x=x, y=float(a[0])), name=node.name)
                if float(a[0]) <= 1
                else mb.add(x=mb.relu(x=x), y=mb.mul(x=mb.minimum(x=x, y=0.0), y=float(a[0])), name=node.name)
            )
            context.add(res)
            return
        channels = x.shape[1]
        a = np.broadcast_to(a, (channels,)).astype(np.float32) if a.size in (1, channels) else a
        if x.rank == 4:
            context.add(mb.prelu(x=x, alpha=a, name=node.name))
            return
        if x.rank < 4:  # [N, C] or [N, C, L]: trailing unit axes
            axes = list(range(x.rank, 4))
            y = mb.prelu(x=mb.expand_dims(x=x, axes=axes), alpha=a)
            context.add(mb.squeeze(x=y, axes=axes, name=node.name))
            return
        # rank 5+: fold the spatial axes after the first into the last two kept
        shape = mb.shape(x=x)
        n_c_d = [int(d) for d in x.shape[:3]] if all(isinstance(d, (int, np.integer)) for d in x.shape) else None
        if n_c_d is None:
            raise ValueError("prelu on a rank-5+ input needs a static shape")
        y = mb.reshape(x=x, shape=n_c_d + [-1])
        y = mb.prelu(x=y, alpha=a)
        context.add(mb.reshape(x=y, shape=shape, name=node.name))

    _registered = True
