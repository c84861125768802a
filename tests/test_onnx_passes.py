"""The graph rewrites before onnx2tf, and the onnx2tf wrapper's NHWC add: exact in float, and what XNNPACK runs.

A MediaPipe-style residual block (depthwise + pointwise conv added to the
max-pooled, channel-padded input, then a per-channel PReLU whose slopes the
exporter shares through Identity nodes) is what tripped onnx2tf on mesh3d:
its Add recomputed every residual sum in NCHW, so each depthwise conv after
one became a grouped CONV_2D and each PReLU multiply got a TRANSPOSE either
side, and the shared slopes kept PReLU from being rewritten for int8.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from devicekit.converters import onnx_passes  # noqa: E402


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride, self.pad = stride, cout - cin
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.act = nn.PReLU(cout)

    def forward(self, x):
        y = F.max_pool2d(x, 2, 2) if self.stride == 2 else x
        if self.pad:
            y = F.pad(y, (0, 0, 0, 0, 0, self.pad))
        return self.act(self.pw(self.dw(x)) + y)


class MeshLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.PReLU(8))
        self.blocks = nn.Sequential(Block(8, 8, 1), Block(8, 16, 2), Block(16, 16, 1), Block(16, 16, 1))
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x))).mean(dim=(2, 3))


def _net(shared_slopes: bool = True):
    torch.manual_seed(0)
    net = MeshLike().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.PReLU):  # one value everywhere (as untrained) -> the exporter shares them
                m.weight.fill_(0.25) if shared_slopes else m.weight.uniform_(-0.5, 1.5)
    return net


def _export(net, path):
    torch.onnx.export(net, (torch.zeros(1, 3, 32, 32),), str(path), dynamo=False, input_names=["input"])
    return path


def _run(path, x):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


def test_shared_slopes_are_found_and_every_prelu_rewritten(tmp_path):
    src = _export(_net(), tmp_path / "m.onnx")
    assert any(n.op_type == "Identity" for n in onnx.load(str(src)).graph.node)  # the exporter shares the slopes
    notes = onnx_passes.run_passes(src, tmp_path / "int8.onnx", onnx_passes.PASSES + onnx_passes.INT8_PASSES)
    out = onnx.load(str(tmp_path / "int8.onnx"))
    assert not [n for n in out.graph.node if n.op_type == "PRelu"], notes
    assert any("5 PReLU" in n for n in notes), notes
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "int8.onnx", x), _run(src, x), rtol=1e-5, atol=1e-5)


def test_prelu_rewrite_is_exact_with_slopes_above_one(tmp_path):
    src = _export(_net(shared_slopes=False), tmp_path / "m.onnx")
    onnx_passes.run_passes(src, tmp_path / "int8.onnx", onnx_passes.PASSES + onnx_passes.INT8_PASSES)
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)[:1]
    np.testing.assert_allclose(_run(tmp_path / "int8.onnx", x), _run(src, x), rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    pytest.importorskip("tensorflow")
    from devicekit import converters as cv
    from devicekit import pipeline

    d = tmp_path_factory.mktemp("meshlike")
    net = _net()
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 32, 32),)), d / "net.pt2")
    m = cv.load_model(str(d / "net.pt2"), spec_overrides={"mean": (127.5,), "std": (128.0,)})
    opts = cv.ConvertOptions(spec=m.spec, out_dir=d / "out", calib_count=16, gate=cv.GateConfig(enabled=False),
                             verify=False, check=False)
    rep = pipeline.convert(m, ["tflite-fp32", "tflite-int8"], opts)
    return {r.target: r for r in rep.results}, net


def test_residual_add_stays_nhwc(converted):
    """fp32: every depthwise conv is a DEPTHWISE_CONV_2D, PReLU one op, no TRANSPOSE; the numbers are PyTorch's."""
    from devicekit.runtime import TFLiteRunner

    res, net = converted
    ops = res["tflite-fp32"].summary["op_counts"]
    assert ops.get("DEPTHWISE_CONV_2D") == 4 and ops.get("PRELU") == 5, ops
    assert "TRANSPOSE" not in ops and "ABS" not in ops, ops
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(TFLiteRunner(res["tflite-fp32"].artifact).run(x)[0], ref, rtol=1e-4, atol=1e-5)


def test_int8_block_runs_whole_under_xnnpack(converted):
    from devicekit.runtime.probe import probe

    res, _ = converted
    ops = res["tflite-int8"].summary["op_counts"]
    assert not {"PRELU", "TRANSPOSE", "ABS"} & set(ops), ops
    assert ops.get("DEPTHWISE_CONV_2D") == 4, ops
    v = probe(res["tflite-int8"].artifact)
    assert v["verdict"] == "delegated" and v["xnnpack"]["partitions"] == 1, v


@pytest.mark.parametrize("cin,cout,groups,k,rewritten", [
    (272, 68, 68, 3, True),  # heatmap2s's second stage: 4 inputs, one output per group
    (16, 16, 8, 3, True),  # two outputs per group
    (16, 8, 8, 5, True),
    (32, 32, 4, 3, False),  # 8 outputs per group: XNNPACK's per-group GEMM is wide enough
    (64, 64, 32, 1, False),  # the 1x1 sum would cost far more than the grouped 1x1 itself
    (16, 16, 16, 3, False),  # depthwise already
])
def test_grouped_conv_as_depthwise_sum_is_exact_where_it_applies(tmp_path, cin, cout, groups, k, rewritten):
    torch.manual_seed(0)
    net = nn.Conv2d(cin, cout, k, padding=k // 2, groups=groups).eval()
    src = tmp_path / "g.onnx"
    torch.onnx.export(net, (torch.zeros(1, cin, 12, 12),), str(src), dynamo=False, input_names=["input"])
    notes = onnx_passes.run_passes(src, tmp_path / "out.onnx", [onnx_passes.grouped_conv_as_depthwise_sum])
    assert bool(notes) == rewritten
    graph = onnx.load(str(tmp_path / "out.onnx")).graph
    groups_after = sorted(onnx_passes._attr(n, "group", 1) for n in graph.node if n.op_type == "Conv")
    assert groups_after == ([1, cin] if rewritten else [groups])
    x = np.random.default_rng(0).normal(size=(1, cin, 12, 12)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "out.onnx", x), _run(src, x), rtol=0, atol=2e-5)
