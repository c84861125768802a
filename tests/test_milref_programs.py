"""The reference interpreter on real .mlpackages made by coremltools from small PyTorch modules.

Every package goes through the real converter and serializer (weight.bin
blobs, fp16 constants, constexpr dequantisation ops), and the interpreter's
outputs are compared with PyTorch.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")
nn = torch.nn
F = nn.functional

from devicekit.errors import InputError  # noqa: E402
from devicekit.milref import OpNotCovered, covered_ops, run_mlpackage, uncovered_ops  # noqa: E402


class Mixed(nn.Module):
    """Odd sizes, grouped conv, PReLU, ceil_mode pooling, pads, nearest upsample, reductions with keep_dims."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, 2, 1)
        self.act = nn.PReLU(8)
        with torch.no_grad():
            self.act.weight.copy_(torch.linspace(0.05, 0.4, 8))  # per channel: stays a real prelu
        self.c2 = nn.Conv2d(8, 8, 3, 1, 1, groups=4)
        self.dw = nn.Conv2d(8, 8, 3, 1, 0, groups=8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        y = self.act(self.c1(x))  # 17x19 -> 9x10
        y = F.max_pool2d(y, 3, 2, 1, ceil_mode=True)  # ceil_mode
        y = F.relu6(self.c2(y))
        y = F.pad(y, (1, 0, 2, 1), mode="reflect")
        y = self.dw(F.pad(y, (1, 1, 1, 1), mode="replicate"))
        y = F.avg_pool2d(y, 2, 2, ceil_mode=True, count_include_pad=False)
        up = F.interpolate(y, scale_factor=2, mode="nearest")
        m = up.mean(dim=(2, 3), keepdim=True) + up.amax(dim=(2, 3), keepdim=True)
        v = torch.softmax(self.fc(m.flatten(1)), dim=1)
        return v, up.sum(dim=1)


def _convert(module, shape, precision="fp32", target="iOS17", image=False):
    module = module.eval()
    ep = torch.export.export(module, (torch.zeros(shape),)).run_decompositions({})
    inp = (
        ct.ImageType(name="image", shape=shape, scale=1 / 127.5, bias=[-1.0, -1.0, -1.0], color_layout=ct.colorlayout.BGR)
        if image
        else ct.TensorType(name="image", shape=shape, dtype=np.float32)
    )
    return ct.convert(
        ep,
        inputs=[inp],
        convert_to="mlprogram",
        minimum_deployment_target=getattr(ct.target, target),
        compute_precision=ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16,
        skip_model_load=True,
    )


def _outputs(path, x, module):
    got = run_mlpackage(path, {"image": x})
    ref = [o.detach().numpy() for o in module(torch.from_numpy(x))]
    return [np.asarray(v, np.float32) for v in got.values()], ref


@pytest.fixture(scope="module")
def mixed():
    torch.manual_seed(0)
    return Mixed().eval()


def test_fp32_program_matches_torch(mixed, tmp_path):
    shape = (1, 3, 17, 19)
    ml = _convert(mixed, shape)
    ml.save(str(tmp_path / "m.mlpackage"))
    assert uncovered_ops(tmp_path / "m.mlpackage") == []
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    got, ref = _outputs(tmp_path / "m.mlpackage", x, mixed)
    ops = {o.type for o in __import__("devicekit.milref", fromlist=["load_program"]).load_program(tmp_path / "m.mlpackage").operations}
    assert {"prelu", "max_pool", "avg_pool", "pad", "upsample_nearest_neighbor", "reduce_mean", "reduce_max", "softmax", "linear"} <= ops
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_fp16_program_within_fp16_error(mixed, tmp_path):
    shape = (1, 3, 17, 19)
    _convert(mixed, shape, "fp16").save(str(tmp_path / "h.mlpackage"))
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    got, ref = _outputs(tmp_path / "h.mlpackage", x, mixed)
    for g, r in zip(got, ref):
        assert np.max(np.abs(g - r)) <= 1e-2 * max(1.0, np.max(np.abs(r)))
        assert np.max(np.abs(g - r)) > 0  # fp16 rounding is emulated, not skipped


@pytest.mark.parametrize("target,expect_op", [("iOS17", "constexpr_affine_dequantize"), ("iOS18", "constexpr_blockwise_shift_scale")])
def test_int8_weight_dequantisation(tmp_path, target, expect_op):
    from coremltools.optimize.coreml import OpLinearQuantizerConfig, OptimizationConfig, linear_quantize_weights

    torch.manual_seed(1)
    m = nn.Sequential(nn.Conv2d(3, 32, 5), nn.ReLU(), nn.Conv2d(32, 16, 3), nn.Flatten(), nn.Linear(16 * 10 * 10, 10)).eval()
    shape = (1, 3, 16, 16)
    ml = linear_quantize_weights(_convert(m, shape, target=target), OptimizationConfig(global_config=OpLinearQuantizerConfig(weight_threshold=100)))
    ml.save(str(tmp_path / "q.mlpackage"))
    from devicekit.milref import load_program

    assert expect_op in {o.type for o in load_program(tmp_path / "q.mlpackage").operations}
    x = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    got = np.asarray(next(iter(run_mlpackage(tmp_path / "q.mlpackage", {"image": x}).values())), np.float32)
    ref = m(torch.from_numpy(x)).detach().numpy()
    err = np.max(np.abs(got - ref)) / np.max(np.abs(ref))
    assert 0 < err < 0.03  # int8 weights: small but nonzero error (a wrong scale axis gives O(1))


@pytest.mark.parametrize("nbits,target", [(4, "iOS17"), (6, "iOS17"), (4, "iOS18")])
def test_palettized_weights(tmp_path, nbits, target):
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig, palettize_weights

    torch.manual_seed(2)
    m = nn.Sequential(nn.Conv2d(3, 32, 5), nn.ReLU(), nn.Conv2d(32, 16, 3)).eval()
    shape = (1, 3, 12, 12)
    ml = _convert(m, shape, target=target)
    # the exact weights coremltools' own MIL holds after palettisation, to compare the decoding bit for bit
    ml = palettize_weights(ml, OptimizationConfig(global_config=OpPalettizerConfig(nbits=nbits, weight_threshold=100)))
    ml.save(str(tmp_path / "p.mlpackage"))
    from devicekit.milref import load_program, run_program

    prog = load_program(tmp_path / "p.mlpackage")
    luts = [o for o in prog.operations if o.type == "constexpr_lut_to_dense"]
    assert luts
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    env = run_program(prog, {"image": x}, keep=True)
    checked = 0
    for op in ml._mil_program.functions["main"].operations:
        if op.op_type == "constexpr_lut_to_dense":  # coremltools' own decoding of the same op
            want = np.asarray(op.materialized_val_inference())
            np.testing.assert_array_equal(env[op.outputs[0].name], want)
            checked += 1
    assert checked == len(luts)
    got = np.asarray(env[prog.outputs[0]], np.float32)
    ref = m(torch.from_numpy(x)).detach().numpy()
    assert np.max(np.abs(got - ref)) / np.max(np.abs(ref)) < (0.2 if nbits == 4 else 0.05)


def test_image_input_applies_scale_and_bias(tmp_path):
    m = nn.Sequential(nn.Conv2d(3, 4, 1)).eval()
    shape = (1, 3, 6, 6)
    _convert(m, shape, image=True).save(str(tmp_path / "i.mlpackage"))
    px = np.random.default_rng(5).integers(0, 256, shape).astype(np.float32)
    got = np.asarray(next(iter(run_mlpackage(tmp_path / "i.mlpackage", {"image": px}).values())), np.float32)
    ref = m(torch.from_numpy(px / 127.5 - 1.0)).detach().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, 2, 1, output_padding=1, groups=2)

    def forward(self, x):
        a = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        b = F.interpolate(x, size=(9, 11), mode="bilinear", align_corners=True)
        return a, b, self.up(x)


def test_decoder_ops(tmp_path):
    torch.manual_seed(3)
    m = Decoder().eval()
    shape = (1, 4, 5, 6)
    _convert(m, shape).save(str(tmp_path / "d.mlpackage"))
    x = np.random.default_rng(6).standard_normal(shape).astype(np.float32)
    got, ref = _outputs(tmp_path / "d.mlpackage", x, m)
    for g, r in zip(got, ref):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)


def test_uncovered_op_is_not_verified(tmp_path):
    class Cum(nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    _convert(Cum(), (1, 4, 3, 3)).save(str(tmp_path / "c.mlpackage"))
    assert "cumsum" not in covered_ops()
    assert uncovered_ops(tmp_path / "c.mlpackage") == ["cumsum"]
    with pytest.raises(OpNotCovered, match="not verified: op cumsum"):
        run_mlpackage(tmp_path / "c.mlpackage", {"image": np.zeros((1, 4, 3, 3), np.float32)})


def test_bad_inputs(mixed, tmp_path):
    shape = (1, 3, 17, 19)
    _convert(mixed, shape).save(str(tmp_path / "m.mlpackage"))
    with pytest.raises(InputError, match="shape"):
        run_mlpackage(tmp_path / "m.mlpackage", {"image": np.zeros((1, 3, 16, 16), np.float32)})
    with pytest.raises(InputError, match="missing input"):
        run_mlpackage(tmp_path / "m.mlpackage", {"x": np.zeros(shape, np.float32)})
    with pytest.raises(InputError, match="not found"):
        run_mlpackage(tmp_path / "nope.mlpackage", {})
    (tmp_path / "m.mlpackage" / "Data" / "com.apple.CoreML" / "weights" / "weight.bin").write_bytes(b"\0" * 80)
    with pytest.raises(InputError, match="weight"):
        run_mlpackage(tmp_path / "m.mlpackage", {"image": np.zeros(shape, np.float32)})


def test_runs_without_torch(mixed, tmp_path):
    """milref imports neither torch nor coremltools (only its protobuf classes)."""
    shape = (1, 3, 17, 19)
    _convert(mixed, shape).save(str(tmp_path / "m.mlpackage"))
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'tensorflow'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import numpy as np\n"
        "from devicekit.milref import run_mlpackage\n"
        f"out = run_mlpackage({str(tmp_path / 'm.mlpackage')!r}, {{'image': np.ones({shape}, np.float32)}})\n"
        "assert 'coremltools' not in sys.modules, 'coremltools was imported'\n"
        "print(sorted(out))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
