"""AWS Device Farm backend: botocore's Stubber (requests validated against the real devicefarm service model),
presigned-URL uploads and artifact downloads against a real HTTP server on 127.0.0.1, and a fake farm result
(a Customer Artifacts zip holding the simulated app's protocol-2 files) turned into reportable runs/<RUN>/."""

from __future__ import annotations

import datetime
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import boto3  # noqa: E402  (the farm extra: make setup installs it)
from botocore.stub import ANY, Stubber  # noqa: E402

from device_tests.models import tiny_tflite  # noqa: E402
from devicekit.bench import (  # noqa: E402
    BenchConfig,
    awsdf,  # noqa: E402
)
from devicekit.errors import DeviceError, EnvironmentMissing, InputError, UsageError  # noqa: E402

ACCOUNT = "123456789012"
PROJECT = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:project:0123abcd-0123-4567-89ab-0123456789ab"
POOL_ARN = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:devicepool:0123abcd-0123-4567-89ab-0123456789ab/11111111-2222-3333-4444-555555555555"
RUN_ARN = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:run:0123abcd-0123-4567-89ab-0123456789ab/99999999-2222-3333-4444-555555555555"
SIGNATURE = "X-Amz-Signature=feedfacecafe0123456789"  # what a presigned URL embeds: must never reach results or logs
DEVICES = [  # the job's device records, as Device Farm returns them
    {"arn": "arn:aws:devicefarm:us-west-2::device:AAAA1111", "name": "Google Pixel 7", "manufacturer": "Google",
     "model": "Pixel 7", "modelId": "GVU6C", "os": "14", "platform": "ANDROID", "formFactor": "PHONE"},
    {"arn": "arn:aws:devicefarm:us-west-2::device:BBBB2222", "name": "Samsung Galaxy S23", "manufacturer": "Samsung",
     "model": "SM-S911U", "modelId": "SM-S911U", "os": "13", "platform": "ANDROID", "formFactor": "PHONE"},
]


def _client():
    return boto3.session.Session(region_name="us-west-2", aws_access_key_id="AKIDEXAMPLE",
                                 aws_secret_access_key="not-a-secret").client("devicefarm")


class Farm:
    """The storage side of Device Farm on 127.0.0.1: presigned PUT targets and artifact downloads."""

    def __init__(self):
        self.puts: dict[str, bytes] = {}
        self.files: dict[str, bytes] = {}
        farm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                farm.puts[self.path.split("?")[0]] = body
                self.send_response(403 if self.path.startswith("/expired") else 200)  # a presigned URL past its time
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):  # noqa: N802
                data = farm.files.get(self.path.split("?")[0])
                self.send_response(200 if data is not None else 404)
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.base}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&{SIGNATURE}"


@pytest.fixture
def farm():
    f = Farm()
    yield f
    f.server.shutdown()
    f.server.server_close()


@pytest.fixture(scope="module")
def tfl():
    return tiny_tflite()


@pytest.fixture
def apks(tfl, tmp_path):
    app, test = tmp_path / "app-benchmark.apk", tmp_path / "app-benchmark-androidTest.apk"
    with zipfile.ZipFile(app, "w") as z:  # the benchmark APK carries the model in its assets (devicekit package)
        z.writestr("AndroidManifest.xml", b"\0")
        z.writestr("assets/tiny.tflite", tfl.read_bytes())
    with zipfile.ZipFile(test, "w") as z:
        z.writestr("assets/golden/golden.json", "{}")
    return app, test


def app_output(tfl, d: Path, model: str, manufacturer: str, frames: int) -> Path:
    """What the benchmark app writes on a phone (protocol 2), made by the simulated phone's app on the real LiteRT."""
    from device_tests import simapp

    d.mkdir(parents=True)
    assert simapp.main(["--dir", str(d), "--model", str(tfl), "--frames", str(frames), "--warmup", "2",
                        "--model-name", model, "--manufacturer", manufacturer, "--os", "android 14"]) == 0
    (d / "golden_result.json").write_text(json.dumps(  # DEVICE_PROTOCOL.md (2): written before frames.csv
        {"protocol": 2, "outputs": [{"name": "out", "max_abs": 0.001, "rel_l2": 0.0004}],
         "landmarks_px_mean": 0.03, "landmarks_px_max": 0.11}))
    return d


def customer_zip(app_dir: Path, run: str, golden_log: str = "OK (4 tests)\n") -> bytes:
    """The job's Customer Artifacts: $DEVICEFARM_LOG_DIR as Device Farm zips it (Host_Machine_Files/...)."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        base = "Host_Machine_Files/$DEVICEFARM_LOG_DIR/devicekit"
        for p in sorted(app_dir.iterdir()):
            z.writestr(f"{base}/{run}/{p.name}", p.read_bytes())
        z.writestr(f"{base}/golden_test.txt", f"INSTRUMENTATION_STATUS_CODE: 0\n{golden_log}")
    return buf.getvalue()


def cfg_for(tfl, tmp_path, apks=None, **kw) -> BenchConfig:
    args = dict(artifact=tfl, device=f"awsdf:{PROJECT}/My Pool", frames=12, warmup=2, threads=2, delegate="xnnpack",
                runs_dir=tmp_path / "runs", run_id="farm1", app=apks[0] if apks else None)
    args.update(kw)
    return BenchConfig(**args)


def stub_uploads(st: Stubber, farm: Farm, fail: str | None = None) -> None:
    for k, (kind, name) in enumerate((("ANDROID_APP", "app-benchmark.apk"),
                                      ("INSTRUMENTATION_TEST_PACKAGE", "app-benchmark-androidTest.apk"),
                                      ("INSTRUMENTATION_TEST_SPEC", "devicekit-testspec.yml"))):
        arn = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:upload:0123abcd-0123-4567-89ab-0123456789ab/up{k}"
        st.add_response("create_upload", {"upload": {"arn": arn, "name": name, "type": kind, "status": "INITIALIZED",
                                                     "url": farm.url(f"/upload/{k}")}},
                        {"projectArn": PROJECT, "name": name, "type": kind, "contentType": "application/octet-stream"})
        st.add_response("get_upload", {"upload": {"arn": arn, "status": "PROCESSING"}}, {"arn": arn})
        if fail == kind:
            st.add_response("get_upload", {"upload": {"arn": arn, "status": "FAILED",
                                                      "message": "The APK could not be parsed.\nINVALID_APP"}}, {"arn": arn})
            return
        st.add_response("get_upload", {"upload": {"arn": arn, "status": "SUCCEEDED"}}, {"arn": arn})


def stub_pools(st: Stubber) -> None:
    st.add_response("list_device_pools", {"devicePools": [
        {"arn": POOL_ARN.replace("11111111", "00000000"), "name": "Top Devices", "type": "CURATED"},
        {"arn": POOL_ARN, "name": "My Pool", "type": "PRIVATE"}]}, {"arn": PROJECT})


def stub_schedule(st: Stubber, cfg) -> None:
    env = {e["name"]: e["value"] for e in awsdf.run_environment(cfg, "farm1")}
    assert env["DEVICEKIT_FRAMES"] == "12" and env["DEVICEKIT_RUN"] == "farm1" and env["DEVICEKIT_DELEGATE"] == "xnnpack"
    st.add_response("schedule_run", {"run": {"arn": RUN_ARN, "name": "devicekit farm1", "status": "SCHEDULING"}},
                    {"projectArn": PROJECT, "appArn": ANY, "devicePoolArn": POOL_ARN, "name": "devicekit farm1",
                     "test": {"type": "INSTRUMENTATION", "testPackageArn": ANY, "testSpecArn": ANY},
                     "configuration": {"environmentVariables": awsdf.run_environment(cfg, "farm1")},
                     "executionConfiguration": {"jobTimeoutMinutes": ANY}})


def stub_job(st: Stubber, farm: Farm, k: int, job_arn: str, zip_bytes: bytes | None) -> None:
    files = [{"arn": f"{job_arn}/a1", "name": "TestSpec Output", "type": "TESTSPEC_OUTPUT", "extension": "txt",
              "url": farm.url(f"/art/{k}/testspec.txt")}]
    farm.files[f"/art/{k}/testspec.txt"] = b"test spec output\n"
    if zip_bytes is not None:
        files.append({"arn": f"{job_arn}/a2", "name": "Customer Artifacts", "type": "CUSTOMER_ARTIFACT",
                      "extension": "zip", "url": farm.url(f"/art/{k}/customer.zip")})
        farm.files[f"/art/{k}/customer.zip"] = zip_bytes
    st.add_response("list_artifacts", {"artifacts": files}, {"arn": job_arn, "type": "FILE"})
    farm.files[f"/art/{k}/logcat.txt"] = b"logcat\n"
    st.add_response("list_artifacts", {"artifacts": [{"arn": f"{job_arn}/l1", "name": "Logcat", "type": "DEVICE_LOG",
                                                      "extension": "txt", "url": farm.url(f"/art/{k}/logcat.txt")}]},
                    {"arn": job_arn, "type": "LOG"})
    st.add_response("list_artifacts", {"artifacts": []}, {"arn": job_arn, "type": "SCREENSHOT"})


def stub_scheduled(st: Stubber, farm: Farm, cfg) -> None:
    """The three uploads, the pool by name, the schedule."""
    stub_uploads(st, farm)
    stub_pools(st)
    stub_schedule(st, cfg)


def stub_run(st: Stubber, farm: Farm, cfg, zips: list, statuses=("COMPLETED",), result="PASSED", results=None) -> None:
    """A scheduled run, get_run through ``statuses``, and one job per zip (None: no results)."""
    stub_scheduled(st, farm, cfg)
    for status in statuses:
        st.add_response("get_run", {"run": {"arn": RUN_ARN, "status": status,
                                            "result": result if status == "COMPLETED" else "PENDING"}}, {"arn": RUN_ARN})
    jobs = [job(k, (results or {}).get(k, "PASSED")) for k in range(len(zips))]
    st.add_response("list_jobs", {"jobs": jobs}, {"arn": RUN_ARN})
    for k, z in enumerate(zips):
        stub_job(st, farm, k, jobs[k]["arn"], z)


def job(k: int, result: str = "PASSED") -> dict:
    return {"arn": RUN_ARN.replace(":run:", ":job:") + f"/0000{k}", "name": DEVICES[k]["name"], "status": "COMPLETED",
            "result": result, "device": DEVICES[k], "created": datetime.datetime(2026, 12, 6, 15, 0)}


def cli(*args, env=None):
    e = dict(os.environ, PYTHONPATH=str(ROOT), COLUMNS="200", **(env or {}))
    return subprocess.run([sys.executable, "-m", "devicekit", *map(str, args)], capture_output=True, text=True,
                          env=e, cwd=str(ROOT), timeout=300, stdin=subprocess.DEVNULL)


def no_sleep(_s):
    pass


def test_happy_path_two_devices_become_reportable_runs(tfl, apks, farm, tmp_path):
    cfg = cfg_for(tfl, tmp_path, apks)
    outs = [app_output(tfl, tmp_path / f"phone{k}", DEVICES[k]["model"], DEVICES[k]["manufacturer"], 12) for k in range(2)]
    client = _client()
    logs: list[str] = []
    with Stubber(client) as st:
        stub_run(st, farm, cfg, [customer_zip(o, "farm1") for o in outs], statuses=("PENDING", "RUNNING", "RUNNING", "COMPLETED"))
        res = awsdf.run_awsdf(cfg, apks[1], log=logs.append, client=client, sleep=no_sleep)
        st.assert_no_pending_responses()
    # the three files went to their presigned URLs as they are
    assert farm.puts["/upload/0"] == apks[0].read_bytes() and farm.puts["/upload/1"] == apks[1].read_bytes()
    assert farm.puts["/upload/2"].decode() == awsdf.FARM_TEST_SPEC
    assert [r.run_dir.name for r in res.runs] == ["farm1-01-Google-Pixel-7", "farm1-02-Samsung-Galaxy-S23"]
    assert res.failures == [] and res.status == "COMPLETED" and res.result == "PASSED"
    for k, r in enumerate(res.runs):
        s = json.loads((r.run_dir / "summary.json").read_text())
        assert s["complete"] and s["stats"]["frames"] == 12 and s["transport"] == "awsdf"
        assert s["device"]["model"] == DEVICES[k]["model"] and s["farm"]["device"]["name"] == DEVICES[k]["name"]
        assert s["farm"]["golden_test"] == {"passed": True, "output": "golden_test.txt", "tests": 4}
        assert len((r.run_dir / "frames.csv").read_text().splitlines()) == 13
        kept = sorted(p.name for p in (r.run_dir / "farm").iterdir())
        assert len(kept) == 3 and any(n.endswith(".zip") for n in kept)  # every artifact downloaded and kept
    assert res.runs[0].summary["profile"] == "pixel7"
    # no signature, nor the presigned URLs, in any result file or log line
    text = "\n".join(logs) + "".join(p.read_text(errors="replace") for p in (tmp_path / "runs").rglob("*.json"))
    assert SIGNATURE not in text and farm.base not in text
    out = tmp_path / "report.md"
    r = cli("report", *[x.run_dir for x in res.runs], "--format", "md", "-o", out)
    assert r.returncode == 0, r.stderr
    md = out.read_text()
    assert "Pixel 7" in md and "SM-S911U" in md and "farm1-02-Samsung-Galaxy-S23" in md


def test_one_device_without_results_keeps_the_other_and_exits_3(tfl, apks, farm, tmp_path):
    cfg = cfg_for(tfl, tmp_path, apks)
    out = app_output(tfl, tmp_path / "phone0", "Pixel 7", "Google", 12)
    client = _client()
    with Stubber(client) as st:
        stub_run(st, farm, cfg, [customer_zip(out, "farm1"), None], result="FAILED", results={1: "ERRORED"})
        with pytest.raises(DeviceError) as ei:
            awsdf.run_awsdf(cfg, apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 3
    msg = ei.value.one_line()
    assert "Samsung Galaxy S23: no devicekit results" in msg and "ERRORED" in msg and "1 device run(s) kept" in msg
    assert "\n" not in msg and ei.value.result.runs[0].complete
    assert (tmp_path / "runs/farm1-02-Samsung-Galaxy-S23/farm").is_dir()  # its logs are kept all the same


def test_upload_failed_is_bad_input(tfl, apks, farm, tmp_path):
    client = _client()
    with Stubber(client) as st:
        stub_uploads(st, farm, fail="INSTRUMENTATION_TEST_PACKAGE")
        with pytest.raises(InputError) as ei:
            awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks), apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 2
    assert ei.value.one_line() == ("Device Farm rejected app-benchmark-androidTest.apk (INSTRUMENTATION_TEST_PACKAGE): "
                                   "The APK could not be parsed. INVALID_APP")


def test_pool_not_found(tfl, apks, farm, tmp_path):
    client = _client()
    with Stubber(client) as st:
        stub_uploads(st, farm)
        stub_pools(st)
        with pytest.raises(InputError) as ei:
            awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks, device=f"awsdf:{PROJECT}/Nope"), apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 2
    assert "no device pool named 'Nope' in the project (pools: 'Top Devices', 'My Pool')" in ei.value.one_line()
    client = _client()
    with Stubber(client) as st:  # a pool ARN that does not exist: Device Farm's NotFoundException, one line
        stub_uploads(st, farm)
        st.add_client_error("get_device_pool", "NotFoundException", "Device pool was not found.", 404,
                            expected_params={"arn": POOL_ARN})
        with pytest.raises(InputError) as ei:
            awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks, device=f"awsdf:{PROJECT}/{POOL_ARN}"), apks[1], client=client,
                            sleep=no_sleep)
    assert ei.value.exit_code == 2 and "NotFoundException: Device pool was not found." in ei.value.one_line()


def test_run_errored(tfl, apks, farm, tmp_path):
    cfg = cfg_for(tfl, tmp_path, apks)
    client = _client()
    with Stubber(client) as st:
        stub_scheduled(st, farm, cfg)
        st.add_response("get_run", {"run": {"arn": RUN_ARN, "status": "COMPLETED", "result": "ERRORED",
                                            "message": "There was a problem\nprocessing the test package."}}, {"arn": RUN_ARN})
        st.add_response("list_jobs", {"jobs": []}, {"arn": RUN_ARN})
        with pytest.raises(DeviceError) as ei:
            awsdf.run_awsdf(cfg, apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 3
    assert ei.value.one_line().startswith("the Device Farm run ended ERRORED with no device results: There was a problem processing the test package.; "
                                          "0 device run(s) kept")


def test_timeout_stops_the_run_and_keeps_what_was_downloaded(tfl, apks, farm, tmp_path):
    cfg = cfg_for(tfl, tmp_path, apks)
    out = app_output(tfl, tmp_path / "phone0", "Pixel 7", "Google", 12)
    now = [0.0]
    client = _client()
    with Stubber(client) as st:
        stub_scheduled(st, farm, cfg)
        for _ in range(3):
            st.add_response("get_run", {"run": {"arn": RUN_ARN, "status": "RUNNING", "result": "PENDING"}}, {"arn": RUN_ARN})
        st.add_response("stop_run", {"run": {"arn": RUN_ARN, "status": "STOPPING"}}, {"arn": RUN_ARN})
        st.add_response("list_jobs", {"jobs": [job(0)]}, {"arn": RUN_ARN})
        stub_job(st, farm, 0, job(0)["arn"], customer_zip(out, "farm1"))

        def sleep(s):
            now[0] += s

        with pytest.raises(DeviceError) as ei:
            awsdf.run_awsdf(cfg, apks[1], client=client, sleep=sleep, clock=lambda: now[0], wait_s=30)
        st.assert_no_pending_responses()
    assert ei.value.exit_code == 3
    msg = ei.value.one_line()
    assert msg.startswith("timeout: the Device Farm run was still RUNNING after 30 s; devicekit stopped it")
    assert "1 device run(s) kept" in msg and "devicekit report" in msg
    assert json.loads((tmp_path / "runs/farm1-01-Google-Pixel-7/summary.json").read_text())["stats"]["frames"] == 12


def test_missing_credentials(tfl, apks, farm, tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    # botocore's own NoCredentialsError, raised by a real client at its first request
    client = boto3.session.Session(region_name="us-west-2").client("devicefarm")
    with pytest.raises(EnvironmentMissing) as ei:
        awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks), apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 3 and ei.value.one_line().startswith("creating the ANDROID_APP upload: no AWS credentials found")
    assert farm.puts == {}
    # and as a user meets it: the CLI checks the standard chain before any upload
    r = cli("bench", tfl, "--device", f"awsdf:{PROJECT}", "--apk", apks[0], "--test-apk", apks[1],
            "--runs-dir", tmp_path / "runs", env={"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
                                                  "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"})
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "no AWS credentials found for Device Farm" in " ".join(r.stderr.split())


@pytest.mark.parametrize("args,code,words", [
    (["--device", "awsdf:arn:aws:devicefarm:us-east-1:123:project:x"], 2, "is not a Device Farm project ARN"),
    (["--device", f"awsdf:{PROJECT}/arn:aws:s3:::bucket"], 2, "is not a Device Farm device pool ARN"),
    (["--device", "host", "--test-apk", "t.apk"], 2, "--test-apk applies to --device awsdf:"),
    (["--device", f"awsdf:{PROJECT}", "--duration", "5"], 2, "--duration is not available on Device Farm"),
    (["--device", f"awsdf:{PROJECT}", "--apk", "APP"], 2, "give both --apk and --test-apk"),
])
def test_bad_input_is_one_line(tfl, apks, tmp_path, args, code, words):
    args = [str(apks[0]) if a == "APP" else a for a in args]
    r = cli("bench", tfl, *args, "--runs-dir", tmp_path / "runs")
    assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr and words in " ".join(r.stderr.split())


def test_prebuilt_apk_must_carry_the_model(tfl, apks, tmp_path):
    other = tmp_path / "other.apk"
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("assets/tiny.tflite", b"another model")
    with pytest.raises(InputError, match="does not carry") as ei:
        awsdf.check_apks(tfl, other, apks[1])
    assert "devicekit package" in ei.value.one_line()
    not_zip = tmp_path / "broken.apk"
    not_zip.write_bytes(b"not a zip")
    with pytest.raises(InputError, match="is not an APK"):
        awsdf.check_apks(tfl, apks[0], not_zip)
    awsdf.check_apks(tfl, apks[0], apks[1])  # the model's own APK passes


def test_build_runs_both_gradle_tasks(tfl, tmp_path, monkeypatch):
    """No Android SDK here: the real render + Gradle code path, with the Gradle run recorded at the boundary."""
    from devicekit.bench import build

    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    with pytest.raises(EnvironmentMissing, match="needs an Android SDK") as ei:
        awsdf.build_apks(tfl, "com.devicekit.bench", print)
    assert ei.value.exit_code == 3 and "--test-apk app-benchmark-androidTest.apk" in ei.value.one_line()
    monkeypatch.setenv("ANDROID_HOME", str(tmp_path))
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path / "cache"))
    project = tmp_path / "proj"
    (project / "app").mkdir(parents=True)
    (project / "gradlew").write_text("#!/bin/sh\n")
    monkeypatch.setattr(build, "_render", lambda *a, **k: project)
    calls = []

    def gradle(cmd, **kw):
        calls.append(cmd)
        for rel in ("app/build/outputs/apk/benchmark/app-benchmark.apk",
                    "app/build/outputs/apk/androidTest/benchmark/app-benchmark-androidTest.apk"):
            (project / rel).parent.mkdir(parents=True, exist_ok=True)
            (project / rel).write_bytes(rel.encode())
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(subprocess, "run", gradle)
    app, test = awsdf.build_apks(tfl, "com.devicekit.bench", print)
    assert calls == [[str(project / "gradlew"), "-p", str(project), "--no-daemon", ":app:assembleBenchmark",
                      ":app:assembleBenchmarkAndroidTest"]]
    assert app.read_bytes().endswith(b"app-benchmark.apk") and test.read_bytes().endswith(b"androidTest.apk")
    # the template pairs the golden test with that build type, and keeps the API it calls through R8
    gradle_kts = (ROOT / "mobile_templates/android/app/build.gradle.kts").read_text()
    assert 'testBuildType = "benchmark"' in gradle_kts and 'proguardFiles("benchmark-rules.pro")' in gradle_kts
    assert "-keep class @@LIB_PKG@@.**" in (ROOT / "mobile_templates/android/app/benchmark-rules.pro").read_text()


def test_test_spec_reads_only_what_devicekit_sets():
    import re

    import yaml

    spec = yaml.safe_load(awsdf.FARM_TEST_SPEC)
    assert spec["version"] == 0.1 and spec["android_test_host"] == "amazon_linux_2"
    assert spec["artifacts"] == ["$DEVICEFARM_LOG_DIR"]
    used = set(re.findall(r"\$\{?(DEVICEKIT_[A-Z_]+|DEVICEFARM_[A-Z_]+)", awsdf.FARM_TEST_SPEC))
    cfg = BenchConfig(artifact=Path("m.tflite"), device=f"awsdf:{PROJECT}", golden=True)
    given = {e["name"] for e in awsdf.run_environment(cfg, "r1")}
    assert {u for u in used if u.startswith("DEVICEKIT_")} == given
    assert {u for u in used if u.startswith("DEVICEFARM_")} == {"DEVICEFARM_DEVICE_UDID", "DEVICEFARM_LOG_DIR"}


def test_target_parsing():
    t = awsdf.FarmTarget.parse(f"awsdf:{PROJECT}")
    assert (t.project_arn, t.pool) == (PROJECT, "Top Devices")
    assert awsdf.FarmTarget.parse(f"awsdf:{PROJECT}/{POOL_ARN}").pool == POOL_ARN
    with pytest.raises(UsageError):
        awsdf.FarmTarget.parse("awsdf:")
    cfg = BenchConfig(artifact=Path("m.tflite"), device=f"awsdf:{PROJECT}", app_id="com.x; rm -rf /")
    with pytest.raises(UsageError, match="Android application id"):
        awsdf._check_config(cfg)


FAKE_ADB = r'''
"""adb as the Device Farm test host sees it, for one phone whose storage is a local folder (SIMULATION).
`am start` of the benchmark activity runs the simulated phone's app (device_tests/simapp.py) on the extras given."""
import os, shutil, sys
from pathlib import Path

root = Path(os.environ["FAKE_PHONE"])
argv = sys.argv[1:]
with open(root / "adb.log", "a") as fh:
    fh.write(" ".join(argv) + "\n")
assert argv[:2] == ["-s", os.environ["DEVICEFARM_DEVICE_UDID"]], argv
argv = argv[2:]


def local(p):
    return root / p.lstrip("/")


if argv[0] in ("pull", "push"):
    src, dst = (local(argv[1]), Path(argv[2])) if argv[0] == "pull" else (Path(argv[1]), local(argv[2]))
    if not src.is_file():
        sys.exit(f"adb: error: remote object '{argv[1]}' does not exist")
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    sys.exit(0)
assert argv[0] == "shell", argv
cmd = argv[1:]
if len(cmd) == 1:  # adb shell "test -f FILE && echo done": one string, run by the phone's shell
    words = cmd[0].split()
    assert words[:2] == ["test", "-f"] and words[3:] == ["&&", "echo", "done"], cmd
    print("done" if local(words[2]).is_file() else "")
elif cmd[:2] == ["getprop", "ro.product.model"]:
    print("Pixel 7")
elif cmd[:2] == ["am", "instrument"]:
    print("INSTRUMENTATION_STATUS: test=cpuMatchesTheReference\nINSTRUMENTATION_STATUS_CODE: 0\n\nOK (4 tests)")
elif cmd[:2] == ["mkdir", "-p"]:
    local(cmd[2]).mkdir(parents=True, exist_ok=True)
elif cmd[:2] == ["pm", "path"]:
    print("package:/data/app/~~x/" + cmd[2] + "/base.apk\r")
elif cmd[:2] == ["am", "force-stop"]:
    pass
elif cmd[:2] == ["am", "start"]:
    extras, k = {}, cmd.index("-n") + 2
    while k < len(cmd):
        extras[cmd[k + 1]] = cmd[k + 2]
        k += 3
    package = cmd[cmd.index("-n") + 1].split("/")[0]
    d = local(f"/sdcard/Android/data/{package}/files/devicekit/{extras['devicekit.run']}")
    from device_tests import simapp
    args = ["--dir", str(d), "--model", os.environ["FAKE_MODEL"], "--frames", extras["devicekit.frames"],
            "--warmup", extras["devicekit.warmup"], "--threads", extras["devicekit.threads"],
            "--delegate", extras["devicekit.delegate"], "--model-name", "Pixel 7", "--manufacturer", "Google"]
    sys.exit(simapp.main(args + (["--golden"] if extras.get("devicekit.golden") == "true" else [])))
else:
    sys.exit(f"fake adb: unexpected {cmd}")
'''


def test_the_test_spec_runs_the_protocol_and_its_output_becomes_a_run(farm, tmp_path):
    """The test spec's commands, run by bash on this host against a fake adb (one simulated phone): the golden test,
    the golden files from the test APK, the protocol's launch with the run's environment variables, the poll, the pull.
    The $DEVICEFARM_LOG_DIR it fills, zipped as Customer Artifacts, goes through the Stubber-driven backend with --golden."""
    import yaml

    from device_tests.models import tiny_landmark_tflite
    from devicekit.bench.runner import _golden_files

    art = tiny_landmark_tflite(tmp_path / "m")
    gdir, _ = _golden_files(art)
    phone, logdir, bindir = tmp_path / "phone", tmp_path / "log", tmp_path / "bin"
    for d in (phone, logdir, bindir):
        d.mkdir()
    test_apk = phone / "data/app/~~x/com.devicekit.bench.test/base.apk"
    test_apk.parent.mkdir(parents=True)
    with zipfile.ZipFile(test_apk, "w") as z:  # what the generated androidTest carries (GOLDEN_DIRS["android"])
        for n in ("golden.json", "golden_input.bin"):
            z.write(gdir / n, f"assets/golden/{n}")
    (bindir / "adb").write_text(f"#!{sys.executable}\n{FAKE_ADB}")
    (bindir / "adb").chmod(0o755)
    cfg = BenchConfig(artifact=art, device=f"awsdf:{PROJECT}/My Pool", frames=9, warmup=2, threads=1, delegate="cpu",
                      golden=True, runs_dir=tmp_path / "runs", run_id="farm1", timeout_s=60)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT), FAKE_PHONE=str(phone),
               FAKE_MODEL=str(art), DEVICEFARM_DEVICE_UDID="R58M123ABC", DEVICEFARM_LOG_DIR=str(logdir),
               **{e["name"]: e["value"] for e in awsdf.run_environment(cfg, "farm1")})
    spec = yaml.safe_load(awsdf.FARM_TEST_SPEC)
    for phase in ("install", "test"):
        for command in spec["phases"][phase]["commands"]:
            r = subprocess.run(["bash", "-e", "-c", command], env=env, capture_output=True, text=True, timeout=120,
                               cwd=tmp_path, stdin=subprocess.DEVNULL)
            assert r.returncode == 0, (command, r.stderr[-2000:])
    adb_log = (phone / "adb.log").read_text()
    assert ("-s R58M123ABC shell am start -W -S -n com.devicekit.bench/.DevicekitBenchmarkActivity --es devicekit.run farm1 "
            "--ei devicekit.frames 9 --ei devicekit.warmup 2 --es devicekit.delegate cpu --ei devicekit.threads 1 "
            "--ez devicekit.golden true") in adb_log  # DEVICE_PROTOCOL.md's launch, word for word
    assert "shell am instrument -r -w com.devicekit.bench.test/androidx.test.runner.AndroidJUnitRunner" in adb_log
    out = logdir / "devicekit/farm1"
    assert sorted(p.name for p in out.iterdir()) == ["device.json", "done.json", "frames.csv", "golden_result.json"]
    # Device Farm zips $DEVICEFARM_LOG_DIR as the job's Customer Artifacts
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for p in sorted(logdir.rglob("*")):
            if p.is_file():
                z.write(p, "Host_Machine_Files/$DEVICEFARM_LOG_DIR/" + str(p.relative_to(logdir)))
    app = tmp_path / "app-benchmark.apk"
    with zipfile.ZipFile(app, "w") as z:
        z.writestr("assets/tiny.tflite", art.read_bytes())
    test_apk = Path(shutil.copyfile(test_apk, tmp_path / "app-benchmark-androidTest.apk"))
    cfg = BenchConfig(**{**cfg.__dict__, "app": app})
    client = _client()
    with Stubber(client) as st:
        stub_uploads(st, farm)
        stub_pools(st)
        st.add_response("schedule_run", {"run": {"arn": RUN_ARN, "status": "SCHEDULING"}})
        st.add_response("get_run", {"run": {"arn": RUN_ARN, "status": "COMPLETED", "result": "PASSED"}}, {"arn": RUN_ARN})
        st.add_response("list_jobs", {"jobs": [job(0)]}, {"arn": RUN_ARN})
        stub_job(st, farm, 0, job(0)["arn"], buf.getvalue())
        res = awsdf.run_awsdf(cfg, test_apk, client=client, sleep=no_sleep)
    s = res.runs[0].summary
    assert s["complete"] and s["stats"]["frames"] == 9 and s["golden"]["passed"] is True
    assert s["farm"]["golden_test"]["passed"] is True and s["device"]["model"] == "Pixel 7"


def test_cli_renders_each_device_and_exits_3_when_one_failed(tfl, apks, farm, tmp_path, monkeypatch):
    """The CLI floor (cli/awsdf.py), in-process so the stubbed client can stand in for boto3's default session."""
    from typer.testing import CliRunner

    from devicekit.cli import app

    out = app_output(tfl, tmp_path / "phone0", "Pixel 7", "Google", 12)
    cfg = cfg_for(tfl, tmp_path, apks)
    client = _client()
    monkeypatch.setattr(awsdf, "make_client", lambda: client)
    monkeypatch.setattr(awsdf, "UPLOAD_POLL_S", 0.0)
    monkeypatch.setattr(awsdf, "RUN_POLL_S", 0.0)
    argv = ["bench", str(tfl), "--device", cfg.device, "--apk", str(apks[0]), "--test-apk", str(apks[1]), "--frames", "12",
            "--warmup", "2", "--threads", "2", "--runs-dir", str(tmp_path / "runs"), "--run-id", "farm1"]
    with Stubber(client) as st:
        stub_run(st, farm, cfg, [customer_zip(out, "farm1"), None], result="FAILED", results={1: "ERRORED"})
        r = CliRunner().invoke(app, argv, env={"COLUMNS": "300"})
    assert r.exit_code == 3, r.output
    text = " ".join(r.output.split())
    assert "Google Pixel 7 (android 14): 12 frames, p50" in text and "farm1-01-Google-Pixel-7" in text
    assert "Samsung Galaxy S23: no devicekit results" in text and "Traceback" not in text
    with Stubber(client) as st:
        stub_run(st, farm, cfg, [customer_zip(out, "farm1")])
        r = CliRunner().invoke(app, argv + ["--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "COMPLETED" and [x["summary"]["stats"]["frames"] for x in doc["runs"]] == [12]


def test_golden_gate_failed_on_a_farm_phone_exits_1_and_keeps_the_run(farm, tmp_path):
    from device_tests.models import tiny_landmark_tflite
    from devicekit.errors import GateFailed

    art = tiny_landmark_tflite(tmp_path / "m")
    out = app_output(art, tmp_path / "phone0", "Pixel 7", "Google", 12)
    (out / "golden_result.json").write_text(json.dumps(  # a GPU path that drifts: far outside the gate
        {"protocol": 2, "outputs": [{"name": "out", "max_abs": 3.0, "rel_l2": 0.5}], "landmarks_px_mean": 9.0,
         "landmarks_px_max": 20.0}))
    app, test = tmp_path / "app-benchmark.apk", tmp_path / "app-benchmark-androidTest.apk"
    for p in (app, test):
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("assets/tiny.tflite", art.read_bytes())
    cfg = cfg_for(art, tmp_path, (app, test), golden=True)
    client = _client()
    with Stubber(client) as st:
        stub_run(st, farm, cfg, [customer_zip(out, "farm1", golden_log="FAILURES!!!\nTests run: 4,  Failures: 1\n")])
        with pytest.raises(GateFailed) as ei:
            awsdf.run_awsdf(cfg, test, client=client, sleep=no_sleep)
    assert ei.value.exit_code == 1 and ei.value.one_line().startswith("golden check on the device failed on Google Pixel 7")
    s = ei.value.result.runs[0].summary
    assert s["complete"] and s["golden"]["passed"] is False and s["farm"]["golden_test"]["passed"] is False


def test_ctrl_c_while_waiting_stops_the_run(tfl, apks, farm, tmp_path):
    from devicekit.errors import Interrupted

    cfg = cfg_for(tfl, tmp_path, apks)
    client = _client()
    with Stubber(client) as st:
        stub_scheduled(st, farm, cfg)
        st.add_response("stop_run", {"run": {"arn": RUN_ARN, "status": "STOPPING"}}, {"arn": RUN_ARN})
        upload_sleep = iter([None] * 3)  # the three uploads' one PROCESSING poll each, then the run's first wait

        def sleep(s):
            if next(upload_sleep, "run") == "run":
                raise KeyboardInterrupt

        with pytest.raises(Interrupted) as ei:
            awsdf.run_awsdf(cfg, apks[1], client=client, sleep=sleep)
        st.assert_no_pending_responses()  # stop_run was called
    assert ei.value.exit_code == 130 and "'devicekit farm1' was stopped" in ei.value.one_line()


def test_without_boto3_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # import boto3 -> ImportError, as in a light install
    with pytest.raises(EnvironmentMissing) as ei:
        awsdf.make_client()
    assert ei.value.exit_code == 3 and "needs boto3" in ei.value.one_line() and "devicekit[farm]" in ei.value.one_line()


def test_a_refused_put_is_one_line_without_the_signed_url(tfl, apks, farm, tmp_path):
    client = _client()
    arn = f"arn:aws:devicefarm:us-west-2:{ACCOUNT}:upload:0123abcd-0123-4567-89ab-0123456789ab/up0"
    with Stubber(client) as st:
        st.add_response("create_upload", {"upload": {"arn": arn, "status": "INITIALIZED", "url": farm.url("/expired/0")}})
        with pytest.raises(DeviceError) as ei:
            awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks), apks[1], client=client, sleep=no_sleep)
    assert ei.value.exit_code == 3
    assert ei.value.one_line() == "uploading app-benchmark.apk to Device Farm: HTTP 403 Forbidden"
    farm.server.shutdown()  # the storage side gone: a connection error, still one line and no URL
    client = _client()
    with Stubber(client) as st:
        st.add_response("create_upload", {"upload": {"arn": arn, "status": "INITIALIZED", "url": farm.url("/upload/0")}})
        farm.server.server_close()
        with pytest.raises(DeviceError) as ei:
            awsdf.run_awsdf(cfg_for(tfl, tmp_path, apks), apks[1], client=client, sleep=no_sleep)
    assert ei.value.one_line().startswith("uploading app-benchmark.apk to Device Farm: ") and SIGNATURE not in ei.value.one_line()
    assert "127.0.0.1" not in ei.value.one_line()
