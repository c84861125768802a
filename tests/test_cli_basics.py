import json
import subprocess
import sys


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "devicekit", *args], capture_output=True, text=True, timeout=600, **kw)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("devicekit ")
    r = run("--help")
    assert r.returncode == 0 and "convert" in r.stdout or "zoo" in r.stdout


def test_zoo_json_counts_params():
    r = run("zoo", "--json")
    assert r.returncode == 0, r.stderr
    models = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert set(models) >= {
        "zoo:heatmap2s",
        "zoo:mesh3d",
        "zoo:hourglass-parser",
        "zoo:shufflenet-reg",
        "zoo:basiccnn-pool1",
        "zoo:basiccnn-pool2",
        "zoo:basiccnn-pool3",
    }
    # seed 004: fp32 sizes 518 / 120 / 32.5 MB in the paper (MiB, valid-padded convs)
    for k, paper in ((1, 518), (2, 120), (3, 32.5)):
        mib = models[f"zoo:basiccnn-pool{k}"]["fp32_bytes"] / 2**20
        assert abs(mib - paper) / paper < 0.05, (k, mib)
    # seed 000 / 001 / 002 parameter counts within 10 %
    for name, paper in (("heatmap2s", 158091), ("mesh3d", 264317), ("hourglass-parser", 270000)):
        assert abs(models[f"zoo:{name}"]["params"] - paper) / paper < 0.10, name


def test_unknown_command_is_usage_error():
    r = run("frobnicate")
    assert r.returncode == 2
