import numpy as np
import pytest

from devicekit.config import InputSpec, load_project_config, parse_floats, parse_shape
from devicekit.errors import InputError, UsageError


def test_input_spec_normalizes_per_channel():
    spec = InputSpec(shape=(1, 3, 2, 2), mean=(0.0, 127.5, 255.0), std=(1.0, 127.5, 255.0), color="rgb")
    px = np.full((2, 2, 3), 255, np.uint8)
    x = spec.normalize(px)
    assert x.shape == (1, 3, 2, 2)
    np.testing.assert_allclose(x[0, :, 0, 0], [255.0, 1.0, 0.0])


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"color": "gray"}, "needs 1 input channel"),
        ({"shape": (1, 1, 8, 8), "color": "rgb"}, "needs 3 input channels"),
        ({"mean": (1.0, 2.0)}, "--mean needs 1 or 3 values"),
        ({"std": (0.0,)}, "must not be zero"),
        ({"color": "yuv"}, "--color must be one of"),
    ],
)
def test_input_spec_refuses_contradictions(kw, msg):
    with pytest.raises(UsageError, match=msg):
        InputSpec(**kw)


def test_parsers():
    assert parse_shape("1,3,96,96") == (1, 3, 96, 96)
    assert parse_floats("127.5") == (127.5,)
    assert parse_floats("1, 2,3") == (1.0, 2.0, 3.0)
    with pytest.raises(UsageError):
        parse_shape("1,3,96")
    with pytest.raises(UsageError):
        parse_floats("a,b")


def test_toml_unknown_keys_are_errors(tmp_path):
    p = tmp_path / "devicekit.toml"
    p.write_text('[input]\nshape = [1, 3, 64, 64]\ncolour = "rgb"\n')
    with pytest.raises(UsageError, match="unknown key input.colour"):
        load_project_config(p)
    p.write_text("[inptu]\n")
    with pytest.raises(UsageError, match="unknown section"):
        load_project_config(p)
    p.write_text("[input\n")
    with pytest.raises(InputError, match="not valid TOML"):
        load_project_config(p)
    p.write_text('[input]\nmean = "127.5"\ncolor = "gray"\n')
    cfg = load_project_config(p)
    assert cfg.get("input", "color") == "gray"
