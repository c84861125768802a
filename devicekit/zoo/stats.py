"""Parameter and MAC counts of a zoo model, measured with forward hooks."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _stats(name: str) -> dict:
    import torch
    from torch import nn

    from . import ZOO

    entry = ZOO[name]
    model = entry.build().eval()
    macs = 0

    def hook(mod, inp, out):
        nonlocal macs
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
            macs += out.numel() * k
        elif isinstance(mod, nn.Linear):
            macs += out.numel() // out.shape[-1] * mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(entry.input.shape))
    for h in handles:
        h.remove()
    return {"params": sum(p.numel() for p in model.parameters()), "macs": int(macs)}


def model_stats(entry) -> dict:
    return dict(_stats(entry.name))
