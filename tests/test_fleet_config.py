"""devicekit.toml [[fleet]] entries: parsing, selection by name or tag, one-line errors on bad entries."""

import pytest

from devicekit.config import FleetEntry, load_project_config, select_fleet
from devicekit.errors import UsageError

FLEET = """
[bench]
frames = 50

[[fleet]]
device = "192.168.1.20:5555"
name = "pixel7-desk"
tags = ["pixel", "ci"]

[[fleet]]
device = "stf.example.com:7401"
name = "s23-farm"
tags = ["samsung", "ci"]

[[fleet]]
device = "R58M123ABC"
"""


def _load(tmp_path, text):
    p = tmp_path / "devicekit.toml"
    p.write_text(text)
    return load_project_config(p)


def test_fleet_entries_and_selection(tmp_path):
    cfg = _load(tmp_path, FLEET)
    assert cfg.get("bench", "frames") == 50 and "fleet" not in cfg.sections
    assert cfg.fleet == (
        FleetEntry("192.168.1.20:5555", "pixel7-desk", ("pixel", "ci")),
        FleetEntry("stf.example.com:7401", "s23-farm", ("samsung", "ci")),
        FleetEntry("R58M123ABC", "R58M123ABC", ()),
    )  # the name defaults to the device
    assert [e.name for e in select_fleet(cfg.fleet, "ci")] == ["pixel7-desk", "s23-farm"]
    assert [e.device for e in select_fleet(cfg.fleet, "s23-farm")] == ["stf.example.com:7401"]
    assert [e.name for e in select_fleet(cfg.fleet, "R58M123ABC")] == ["R58M123ABC"]
    with pytest.raises(
        UsageError,
        match=r"--fleet nokia: no \[\[fleet\]\] entry .* has that name or tag "
        r"\(names: pixel7-desk, s23-farm, R58M123ABC; tags: ci, pixel, samsung\)",
    ):
        select_fleet(cfg.fleet, "nokia", cfg.path)
    with pytest.raises(UsageError, match=r"has no \[\[fleet\]\] entries"):
        select_fleet(_load(tmp_path, "[bench]\nframes = 5\n").fleet, "ci")


@pytest.mark.parametrize(
    "entry, words",
    [
        ('device = "10.0.0.5:99999"', "device '10.0.0.5:99999' is not host:port"),
        ('device = "10.0.0.5:"', "is not host:port"),
        ('device = "host name:5555"', "is not host:port"),
        ('device = "a;rm -rf /"', "is not an adb serial"),
        ('name = "x"', "device is required"),
        ('device = "1.2.3.4:5555"\ncolour = "red"', "unknown key colour (known: device, name, tags)"),
        ('device = "1.2.3.4:5555"\ntags = "ci"', "tags must be a list of words"),
        ('device = "1.2.3.4:5555"\ntags = ["c i"]', "tags must be a list of words"),
        ('device = "1.2.3.4:5555"\nname = "all"', "not 'all'"),
        ("device = 5555", "device is required"),
    ],
)
def test_bad_fleet_entry_is_one_line(tmp_path, entry, words):
    with pytest.raises(UsageError) as exc:
        _load(tmp_path, f'[[fleet]]\ndevice = "1.1.1.1:5555"\nname = "ok"\n\n[[fleet]]\n{entry}\n')
    msg = exc.value.one_line()
    assert "[[fleet]] entry 2" in msg and words in msg and "\n" not in msg


def test_duplicates_are_errors(tmp_path):
    with pytest.raises(UsageError, match="entry 2: duplicate name 'a'"):
        _load(tmp_path, '[[fleet]]\ndevice = "h:1"\nname = "a"\n[[fleet]]\ndevice = "h:2"\nname = "a"\n')
    with pytest.raises(UsageError, match="entry 2: device h:1 is already entry 'a'"):
        _load(tmp_path, '[[fleet]]\ndevice = "h:1"\nname = "a"\n[[fleet]]\ndevice = "h:1"\nname = "b"\n')
    with pytest.raises(UsageError, match="'ci' is used both as a name and a tag"):
        _load(tmp_path, '[[fleet]]\ndevice = "h:1"\ntags = ["ci"]\n[[fleet]]\ndevice = "h:2"\nname = "ci"\n')
    with pytest.raises(UsageError, match=r"fleet must be an array of tables"):
        _load(tmp_path, '[fleet]\ndevice = "h:1"\n')


def test_report_refuses_a_damaged_fleet_file_in_one_line(tmp_path):
    from tests.cli_run import cli, one_line_error

    fleet = tmp_path / "runs" / "f1"
    fleet.mkdir(parents=True)
    (fleet / "fleet.json").write_text('{"schema": "devicekit.fleet/1", "devices": [')
    one_line_error(cli("report", fleet, "--format", "md", cwd=tmp_path), 2, "fleet.json: does not parse")
    (fleet / "fleet.json").write_text('{"schema": "other/1", "devices": []}')
    one_line_error(cli("report", fleet, cwd=tmp_path), 2, "not a devicekit fleet summary")
    (fleet / "fleet.json").write_text('{"schema": "devicekit.fleet/1", "fleet": "f1", "devices": [{"device": "a:1"}]}')
    one_line_error(cli("report", fleet, cwd=tmp_path), 2, "not a devicekit fleet summary")
    (fleet / "fleet.json").write_text(
        '{"schema": "devicekit.fleet/1", "fleet": "f1", "devices": [{"device": "a:1", "label": "a", "run_id": "../../elsewhere", "status": "ok"}]}'
    )
    one_line_error(cli("report", fleet, cwd=tmp_path), 2, "not a devicekit fleet summary")
    (fleet / "fleet.json").write_text(
        '{"schema": "devicekit.fleet/1", "fleet": "f1", "devices": [{"device": "a:1", '
        '"label": "a", "run_id": "f1-01-a", "status": "refused", "error": "unauthorized"}]}'
    )
    r = cli("report", fleet, "--format", "md", cwd=tmp_path)  # a fleet whose only phone never ran still reports
    assert r.returncode == 0 and "| a (a:1) | - | - | - | - | - | - | - | - | refused | unauthorized |" in r.stdout


def test_a_farm_device_is_not_part_of_a_fleet(tmp_path):
    from tests.cli_run import cli, one_line_error

    model = tmp_path / "m.tflite"
    model.write_bytes(b"x")  # refused before the model is read
    arn = "arn:aws:devicefarm:us-west-2:123456789012:project:12345678-1234-1234-1234-123456789012"
    one_line_error(cli("bench", model, "--device", f"awsdf:{arn}", "--device", "pixel7", cwd=tmp_path), 2, "runs its own device pool")
