"""AWS Device Farm as a bench backend: ``devicekit bench MODEL --device awsdf:PROJECT_ARN[/POOL]``.

Uploads the benchmark APK (the model is bundled in it by ``devicekit package``), the instrumentation test
APK (the generated golden test) and a custom-environment test spec (``FARM_TEST_SPEC``); schedules an
INSTRUMENTATION run on a device pool with the benchmark's parameters as the run's environment variables;
polls; downloads every job's artifacts; and turns each device's "Customer Artifacts" zip (the app's
protocol-2 files, pulled by the test spec into ``$DEVICEFARM_LOG_DIR``) into an ordinary ``runs/<RUN>/``.

Device Farm's instrumentation ``parameters`` take only a test ``filter``, so the protocol's extras cannot
travel there: the test spec runs the protocol's own ``am start ... --es devicekit.run ...`` on the test host
over adb, from environment variables devicekit validated. Credentials come only from boto3's default chain;
no credential, presigned URL or account id other than the project ARN the user passed is written or logged.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DeviceError, DevicekitError, EnvironmentMissing, GateFailed, InputError, Interrupted, UsageError
from ..fsutil import atomic_write_text, sha256_file
from .results import RunResult, new_run_id, read_app_dir, write_run

PREFIX = "awsdf:"
REGION = "us-west-2"  # the only region Device Farm runs in
DEFAULT_POOL = "Top Devices"  # Device Farm's curated pool
PROJECT_ARN_RE = re.compile(r"^arn:aws:devicefarm:us-west-2:\d{12}:project:[0-9A-Fa-f-]{36}$")
POOL_ARN_RE = re.compile(r"^arn:aws:devicefarm:us-west-2:\d{0,12}:devicepool:[0-9A-Fa-f/-]+$")
APP_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")  # an Android application id
APP_FILES = ("frames.csv", "device.json", "done.json", "golden_result.json")  # DEVICE_PROTOCOL.md, protocol 2
MAX_APP_FILE = 256 << 20  # a frames.csv of 1,000,000 frames is about 50 MB; nothing bigger is read from the zip
ARTIFACT_TYPES = ("FILE", "LOG", "SCREENSHOT")
UPLOAD_WAIT_S = 600.0
QUEUE_S = 3600.0  # waiting for devices and installing, on top of the app's own timeout
UPLOAD_POLL_S = 2.0
RUN_POLL_S = 5.0  # doubling up to POLL_MAX_S
POLL_MAX_S = 60.0
CREDENTIALS_HINT = "set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run aws configure / aws sso login"
TEST_RUNNER = "androidx.test.runner.AndroidJUnitRunner"  # the generated app's testInstrumentationRunner

# Run on Device Farm's Android test host for every device of the pool. Every value comes from the run's
# environment variables (set by devicekit, validated: ids, integers, one of DELEGATES); nothing is interpolated here.
FARM_TEST_SPEC = """\
version: 0.1
android_test_host: amazon_linux_2
phases:
  install:
    commands:
      - adb -s "$DEVICEFARM_DEVICE_UDID" shell getprop ro.product.model
  test:
    commands:
      - |
        DK_DIR="/sdcard/Android/data/$DEVICEKIT_APP_ID/files/devicekit/$DEVICEKIT_RUN"
        OUT="$DEVICEFARM_LOG_DIR/devicekit/$DEVICEKIT_RUN"
        mkdir -p "$OUT"
        # the generated golden test (androidTest), as Device Farm's instrumentation report reads it
        adb -s "$DEVICEFARM_DEVICE_UDID" shell am instrument -r -w "$DEVICEKIT_APP_ID.test/$DEVICEKIT_TEST_RUNNER" 2>&1 | tee "$DEVICEFARM_LOG_DIR/devicekit/golden_test.txt"
        adb -s "$DEVICEFARM_DEVICE_UDID" shell mkdir -p "$DK_DIR"
        GOLDEN=""
        if [ "$DEVICEKIT_GOLDEN" = "true" ]; then
          # golden.json and golden_input.bin travel in the test APK (assets/golden/), as the golden test reads them
          TEST_APK=$(adb -s "$DEVICEFARM_DEVICE_UDID" shell pm path "$DEVICEKIT_APP_ID.test" | tr -d '\\r' | sed -n 's/^package://p' | head -n 1)
          adb -s "$DEVICEFARM_DEVICE_UDID" pull "$TEST_APK" /tmp/devicekit-test.apk
          unzip -o -j /tmp/devicekit-test.apk assets/golden/golden.json assets/golden/golden_input.bin -d /tmp/devicekit-golden
          adb -s "$DEVICEFARM_DEVICE_UDID" push /tmp/devicekit-golden/golden.json "$DK_DIR/golden.json"
          adb -s "$DEVICEFARM_DEVICE_UDID" push /tmp/devicekit-golden/golden_input.bin "$DK_DIR/golden_input.bin"
          GOLDEN="--ez devicekit.golden true"
        fi
        adb -s "$DEVICEFARM_DEVICE_UDID" shell am start -W -S -n "$DEVICEKIT_APP_ID/.DevicekitBenchmarkActivity" --es devicekit.run "$DEVICEKIT_RUN" --ei devicekit.frames "$DEVICEKIT_FRAMES" --ei devicekit.warmup "$DEVICEKIT_WARMUP" --es devicekit.delegate "$DEVICEKIT_DELEGATE" --ei devicekit.threads "$DEVICEKIT_THREADS" $GOLDEN
        WAITED=0
        until adb -s "$DEVICEFARM_DEVICE_UDID" shell "test -f $DK_DIR/done.json && echo done" | grep -q done; do
          if [ "$WAITED" -ge "$DEVICEKIT_TIMEOUT_S" ]; then
            adb -s "$DEVICEFARM_DEVICE_UDID" shell am force-stop "$DEVICEKIT_APP_ID"
            break
          fi
          sleep 2
          WAITED=$((WAITED + 2))
        done
        for f in golden_result.json frames.csv device.json done.json; do
          adb -s "$DEVICEFARM_DEVICE_UDID" pull "$DK_DIR/$f" "$OUT/$f" || true
        done
artifacts:
  - $DEVICEFARM_LOG_DIR
"""


@dataclass(frozen=True)
class FarmTarget:
    project_arn: str
    pool: str  # a pool name, or a device pool ARN

    @classmethod
    def parse(cls, device: str) -> "FarmTarget":
        rest = device[len(PREFIX):]
        project, _, pool = rest.partition("/")
        if not PROJECT_ARN_RE.match(project):
            raise UsageError(f"--device {PREFIX}: {project!r} is not a Device Farm project ARN",
                             hint="arn:aws:devicefarm:us-west-2:ACCOUNT:project:UUID (aws devicefarm list-projects)")
        pool = pool or DEFAULT_POOL
        if pool.startswith("arn:") and not POOL_ARN_RE.match(pool):
            raise UsageError(f"--device {PREFIX}: {pool!r} is not a Device Farm device pool ARN",
                             hint="give a pool name or arn:aws:devicefarm:us-west-2:...:devicepool:... (aws devicefarm list-device-pools)")
        return cls(project, pool)


def is_farm_device(name: str | None) -> bool:
    return bool(name) and name.startswith(PREFIX)


@dataclass
class FarmResult:
    run_name: str
    status: str
    result: str | None
    runs: list[RunResult] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line per device that gave no complete run
    downloaded: list[str] = field(default_factory=list)  # local paths of every artifact kept

    def to_json(self) -> dict:
        return {"farm": "aws-device-farm", "run_name": self.run_name, "status": self.status, "result": self.result,
                "runs": [r.to_json() for r in self.runs], "failures": self.failures}


def make_client():
    """The ``devicefarm`` client in us-west-2 from boto3's default session (the standard credential chain)."""
    try:
        import boto3
    except ImportError as exc:
        raise EnvironmentMissing(f"--device {PREFIX} needs boto3, which is not installed ({exc})",
                                 hint="pip install 'devicekit[farm]'") from None
    session = boto3.session.Session(region_name=REGION)
    with _aws("reading AWS credentials"):
        found = session.get_credentials()
    if found is None:
        raise EnvironmentMissing("no AWS credentials found for Device Farm", hint=CREDENTIALS_HINT)
    return session.client("devicefarm")


@contextlib.contextmanager
def _aws(what: str):
    """Turn what botocore raises during one Device Farm step into a one-line devicekit error."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise EnvironmentMissing(f"{what}: no AWS credentials found", hint=CREDENTIALS_HINT) from None
    except ClientError as exc:
        err = exc.response.get("Error", {})
        code, msg = err.get("Code", "?"), " ".join(str(err.get("Message", "")).split())
        kind = InputError if code in ("NotFoundException", "ArgumentException", "InvalidOperationException") else DeviceError
        raise kind(f"{what}: Device Farm says {code}: {msg}") from None
    except BotoCoreError as exc:
        raise DeviceError(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())}") from None


def _pages(client, op: str, key: str, what: str, **kw) -> list[dict]:
    with _aws(what):
        return [item for page in client.get_paginator(op).paginate(**kw) for item in page.get(key, [])]


def _http(req, what: str, timeout: float = 300.0):
    """urllib with one-line errors that never show the (signed) URL."""
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        raise DeviceError(f"{what}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeviceError(f"{what}: {type(reason).__name__}: {reason}") from None


def upload(client, project_arn: str, path: Path, kind: str, log, sleep=time.sleep, clock=time.monotonic) -> str:
    """create_upload, PUT the file to the presigned URL, wait for Device Farm to process it. Returns its ARN."""
    with _aws(f"creating the {kind} upload"):
        up = client.create_upload(projectArn=project_arn, name=path.name, type=kind,
                                  contentType="application/octet-stream")["upload"]
    log(f"uploading {path.name} ({kind}, {path.stat().st_size} bytes)")
    req = urllib.request.Request(up["url"], data=path.read_bytes(), method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    with _http(req, f"uploading {path.name} to Device Farm"):
        pass
    deadline = clock() + UPLOAD_WAIT_S
    while True:
        with _aws(f"checking the upload of {path.name}"):
            up = client.get_upload(arn=up["arn"])["upload"]
        if up["status"] == "SUCCEEDED":
            return up["arn"]
        if up["status"] == "FAILED":
            why = " ".join(str(up.get("message") or up.get("metadata") or "no reason given").split())
            raise InputError(f"Device Farm rejected {path.name} ({kind}): {why[:300]}")
        if clock() > deadline:
            raise DeviceError(f"Device Farm did not process {path.name} in {UPLOAD_WAIT_S:g} s (status {up['status']})")
        sleep(UPLOAD_POLL_S)


def resolve_pool(client, target: FarmTarget) -> str:
    if target.pool.startswith("arn:"):
        with _aws(f"looking up device pool {target.pool}"):
            return client.get_device_pool(arn=target.pool)["devicePool"]["arn"]
    pools = _pages(client, "list_device_pools", "devicePools", "listing the project's device pools", arn=target.project_arn)
    for p in pools:
        if p.get("name") == target.pool:
            return p["arn"]
    names = ", ".join(repr(p.get("name")) for p in pools[:12]) or "none"
    raise InputError(f"no device pool named {target.pool!r} in the project (pools: {names})",
                     hint=f"--device {PREFIX}PROJECT_ARN/POOL_NAME_OR_ARN")


def _apk_models(apk: Path) -> list[str]:
    """sha256 of every .tflite the APK carries in its assets."""
    import hashlib

    try:
        with zipfile.ZipFile(apk) as z:
            return [hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()
                    if n.startswith("assets/") and n.endswith(".tflite")]
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{apk.name} is not an APK (zip): {exc}") from None


def check_apks(artifact: Path, app: Path, test_apk: Path) -> None:
    for flag, p in (("--apk", app), ("--test-apk", test_apk)):
        if not p.is_file():
            raise InputError(f"{flag} file not found: {p}")
        if p.suffix.lower() != ".apk":
            raise InputError(f"{flag} expects an .apk file, got {p.name}")
    if sha256_file(artifact) not in _apk_models(app):
        raise InputError(f"{app.name} does not carry {artifact.name} (no .tflite in its assets has the model's sha256)",
                         hint="on the farm the app runs its bundled model: build the APK from this model (devicekit package)")
    _apk_models(test_apk)


def build_apks(artifact: Path, app_id: str, log) -> tuple[Path, Path]:
    """Render the project and build the benchmark APK and its instrumentation test APK with the project's Gradle."""
    import subprocess

    from . import build

    if not build.android_sdk():
        raise EnvironmentMissing("building the APKs for Device Farm needs an Android SDK (ANDROID_HOME / ANDROID_SDK_ROOT is not set)",
                                 hint="pass prebuilt ones: --apk app-benchmark.apk --test-apk app-benchmark-androidTest.apk "
                                      "(./gradlew :app:assembleBenchmark :app:assembleBenchmarkAndroidTest)")
    slot = build.apps_cache() / f"awsdf-{app_id}-{build.cache_key(artifact)}"
    app, test = slot / "app-benchmark.apk", slot / "app-benchmark-androidTest.apk"
    if app.exists() and test.exists():
        return app, test
    project = build._render(artifact, "android", slot / "project", app_id)
    cmd = build.gradle_command(project) + [":app:assembleBenchmarkAndroidTest"]
    log(f"building the benchmark and test APKs: {' '.join(cmd)}")
    r = subprocess.run(cmd, cwd=project, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    outs = (build.gradle_output(project), project / "app/build/outputs/apk/androidTest/benchmark/app-benchmark-androidTest.apk")
    if r.returncode != 0 or not all(p.exists() for p in outs):
        tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit {r.returncode}"]
        raise DeviceError(f"building the APKs failed ({tail[0]})", hint=f"see {project}; or pass --apk and --test-apk")
    slot.mkdir(parents=True, exist_ok=True)
    for src, dest in zip(outs, (app, test)):  # the cache holds whole APKs only: copy, then rename
        shutil.copyfile(src, dest.with_name(f".{dest.name}.part"))
        os.replace(dest.with_name(f".{dest.name}.part"), dest)
    return app, test


def run_environment(cfg, run_id: str) -> list[dict]:
    """The benchmark's parameters as the run's environment variables (what FARM_TEST_SPEC reads)."""
    env = {"DEVICEKIT_APP_ID": cfg.app_id, "DEVICEKIT_RUN": run_id, "DEVICEKIT_FRAMES": cfg.frames,
           "DEVICEKIT_WARMUP": cfg.warmup, "DEVICEKIT_DELEGATE": cfg.delegate, "DEVICEKIT_THREADS": cfg.threads,
           "DEVICEKIT_GOLDEN": "true" if cfg.golden else "false", "DEVICEKIT_TIMEOUT_S": math.ceil(cfg.timeout()),
           "DEVICEKIT_TEST_RUNNER": TEST_RUNNER}
    return [{"name": k, "value": str(v)} for k, v in env.items()]


def _check_config(cfg) -> FarmTarget:
    target = FarmTarget.parse(cfg.device)
    if cfg.duration_s:
        raise UsageError("--duration is not available on Device Farm (it needs a probe run first); use --frames")
    if cfg.compute_units:
        raise UsageError("--compute-units applies to iOS devices; Device Farm runs here are Android (use --delegate)")
    if not APP_ID_RE.match(cfg.app_id):
        raise UsageError(f"--app-id must be an Android application id (e.g. com.devicekit.bench), got {cfg.app_id!r}")
    return target


def run_awsdf(cfg, test_apk: Path | None = None, log=lambda msg: None, client=None, sleep=time.sleep,
              clock=time.monotonic, wait_s: float | None = None) -> FarmResult:
    """One Device Farm run over a pool; one ``runs/<RUN>-<device>/`` per device job."""
    from .runner import _check_platform, _golden_files, check_artifact, run_meta

    target = _check_config(cfg)
    artifact = Path(cfg.artifact)
    check_artifact(artifact)
    _check_platform(artifact, "android")
    if (cfg.app is None) != (test_apk is None):
        raise UsageError("give both --apk and --test-apk (prebuilt), or neither (devicekit builds both)")
    if cfg.app is not None:
        check_apks(artifact, Path(cfg.app), Path(test_apk))
    golden = _golden_files(artifact) if cfg.golden else None  # the gate to judge golden_result.json with
    if golden:
        shutil.rmtree(golden[0], ignore_errors=True)
    client = client or make_client()
    app, test = (Path(cfg.app), Path(test_apk)) if cfg.app is not None else build_apks(artifact, cfg.app_id, log)
    run_id = cfg.run_id or new_run_id("awsdf")
    name = f"devicekit {run_id}"
    run = _schedule(client, target, cfg, run_id, name, (app, test), log, sleep, clock)
    wait_s = wait_s if wait_s is not None else QUEUE_S + cfg.timeout()
    try:
        run, timed_out = _wait(client, run, wait_s, log, sleep, clock)
    except KeyboardInterrupt:
        _stop(client, run, log)
        raise Interrupted(f"interrupted; the Device Farm run {name!r} was stopped (its results stay in the console)") from None
    meta = {**run_meta(artifact, cfg.device, "android"), "transport": "awsdf",
            "settings": {"frames": cfg.frames, "warmup": cfg.warmup, "threads": cfg.threads, "delegate": cfg.delegate,
                         "golden": cfg.golden, "timeout_s": cfg.timeout(), "app_id": cfg.app_id}}
    res = FarmResult(name, run["status"], run.get("result"))
    jobs = _pages(client, "list_jobs", "jobs", "listing the run's device jobs", arn=run["arn"])
    for k, job in enumerate(jobs):
        try:
            _collect_job(client, job, k, run_id, cfg, meta, golden[1] if golden else None, res, log)
        except DevicekitError as exc:  # one device's listing failed: the others are still collected
            res.failures.append(f"{(job.get('device') or {}).get('name') or job.get('name')}: {exc.one_line()}")
    _verdict(res, run, timed_out, wait_s, cfg.runs_dir)
    return res


def _verdict(res: FarmResult, run: dict, timed_out: bool, wait_s: float, runs_dir) -> None:
    """One line for everything that went wrong (exit 3), else a failed golden gate (exit 1); the result rides along."""
    problem = None
    if timed_out:
        problem = f"timeout: the Device Farm run was still {run['status']} after {wait_s:g} s; devicekit stopped it"
    elif not res.runs and not res.failures:
        why = " ".join(str(run.get("message") or "no message").split())
        problem = f"the Device Farm run ended {run.get('result')} with no device results: {why}"
    hint = ("devicekit report " + " ".join(str(r.run_dir) for r in res.runs)) if res.runs else None
    if problem or res.failures:
        kept = f"{len(res.runs)} device run(s) kept in {runs_dir}, {len(res.downloaded)} artifact(s) downloaded"
        exc = DeviceError(f"{'; '.join(([problem] if problem else []) + res.failures)}; {kept}", hint=hint)
    else:
        failed = [r for r in res.runs if (r.summary.get("golden") or {}).get("passed") is False]
        if not failed:
            return
        exc = GateFailed("golden check on the device failed on " + ", ".join(_name(r) for r in failed), hint=hint)
    exc.result = res
    raise exc


def _name(r: RunResult) -> str:
    return str(((r.summary.get("farm") or {}).get("device") or {}).get("name") or r.run_dir.name)


def _schedule(client, target: FarmTarget, cfg, run_id: str, name: str, apks: tuple[Path, Path], log, sleep, clock) -> dict:
    """Upload the two APKs and the test spec, resolve the pool, schedule the INSTRUMENTATION run."""
    with tempfile.TemporaryDirectory(prefix="devicekit-awsdf-") as td:
        spec = Path(td) / "devicekit-testspec.yml"
        spec.write_text(FARM_TEST_SPEC)
        arns = {kind: upload(client, target.project_arn, p, kind, log, sleep, clock)
                for kind, p in zip(("ANDROID_APP", "INSTRUMENTATION_TEST_PACKAGE", "INSTRUMENTATION_TEST_SPEC"), (*apks, spec))}
    pool_arn = resolve_pool(client, target)
    with _aws("scheduling the run"):
        run = client.schedule_run(
            projectArn=target.project_arn, appArn=arns["ANDROID_APP"], devicePoolArn=pool_arn, name=name,
            test={"type": "INSTRUMENTATION", "testPackageArn": arns["INSTRUMENTATION_TEST_PACKAGE"],
                  "testSpecArn": arns["INSTRUMENTATION_TEST_SPEC"]},
            configuration={"environmentVariables": run_environment(cfg, run_id)},
            executionConfiguration={"jobTimeoutMinutes": min(150, math.ceil((cfg.timeout() + 600) / 60))})["run"]
    log(f"scheduled Device Farm run {name!r} on pool {target.pool!r}")
    return run


def _wait(client, run: dict, wait_s: float, log, sleep, clock) -> tuple[dict, bool]:
    """get_run until COMPLETED, backing off; on timeout, stop_run (devices bill by the minute)."""
    deadline, every, last = clock() + wait_s, RUN_POLL_S, None
    while run["status"] != "COMPLETED":
        if run["status"] != last:
            log(f"Device Farm run: {run['status'].lower()}")
            last = run["status"]
        if clock() > deadline:
            _stop(client, run, log)
            return run, True
        sleep(every)
        every = min(every * 2, POLL_MAX_S)
        with _aws(f"polling the Device Farm run {run.get('name') or ''}".strip()):
            run = {**run, **client.get_run(arn=run["arn"])["run"]}
    log(f"Device Farm run: completed, {str(run.get('result')).lower()}")
    return run, False


def _stop(client, run: dict, log) -> None:
    """stop_run (devices bill by the minute); a failure to stop is said, never hides the results."""
    try:
        with _aws("stopping the Device Farm run"):
            client.stop_run(arn=run["arn"])
        log("stopped the Device Farm run")
    except DevicekitError as exc:
        log(exc.one_line())


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:20] or "device"


def _download(url: str, dest: Path, what: str) -> None:
    """Stream to a temporary name, then rename: a cut download never looks like a whole artifact."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    try:
        with _http(urllib.request.Request(url), f"downloading {what}") as r, open(part, "wb") as fh:
            shutil.copyfileobj(r, fh, 1 << 20)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _collect_job(client, job: dict, k: int, run_id: str, cfg, meta: dict, golden_doc, res: FarmResult, log) -> None:
    dev = job.get("device") or {}
    label = dev.get("name") or f"device {k + 1}"
    run_dir = Path(cfg.runs_dir) / f"{run_id[:40]}-{k + 1:02d}-{_slug(label)}"
    files: dict[str, Path] = {}
    for kind in ARTIFACT_TYPES:
        for a in _pages(client, "list_artifacts", "artifacts", f"listing {label}'s artifacts", arn=job["arn"], type=kind):
            if not a.get("url"):
                continue
            local = run_dir / "farm" / f"{_slug(a.get('name') or a['type'])}-{len(files):03d}.{_slug(a.get('extension') or 'bin')}"
            try:
                _download(a["url"], local, f"{label}'s {a.get('name')}")
            except DeviceError as exc:
                res.failures.append(f"{label}: {exc.message}")
                continue
            files[local.name] = local
            res.downloaded.append(str(local))
            if a.get("type") == "CUSTOMER_ARTIFACT":
                files["customer"] = local
    with tempfile.TemporaryDirectory(prefix="devicekit-awsdf-") as td:
        found = _app_files(files.get("customer"), run_id, Path(td), run_dir)
        if not found:
            res.failures.append(f"{label}: no devicekit results in the job's Customer Artifacts "
                                f"(job {job.get('status')}, {job.get('result')}{': ' + job['message'] if job.get('message') else ''})")
            return
        app = read_app_dir(Path(td))
    device = dict(app.device or {})
    for key in ("model", "manufacturer", "os"):  # what the app measured first; the farm's record fills gaps
        if not device.get(key) and dev.get(key):
            device[key] = dev[key] if key != "os" else f"{str(dev.get('platform', '')).lower()} {dev['os']}".strip()
    golden = None
    if golden_doc is not None:
        from ..app.golden import judge

        if app.golden is not None:
            golden = judge(app.golden, golden_doc["gate"])
        else:
            app.problems.append("the golden check was asked for but the app wrote no golden_result.json")
    farm = {"service": "aws-device-farm", "run_name": res.run_name, "job_status": job.get("status"),
            "job_result": job.get("result"), "job_message": job.get("message"),
            "device": {key: dev.get(key) for key in ("arn", "name", "manufacturer", "model", "modelId", "os", "platform", "formFactor")},
            "artifacts": sorted(n for n in files if n != "customer"),
            "golden_test": _instrumentation_verdict(run_dir / "golden_test.txt")}
    dmeta = {**meta, "device_id": dev.get("arn"), "profile": _profile(dev.get("model") or device.get("model")),
             "farm": farm, "runtimes": {**meta["runtimes"], "device": device.get("runtime"),
                                        "build_type": device.get("build_type"), "accelerator": device.get("accelerator")}}
    error = "; ".join(app.problems) or None
    result = write_run(run_dir, run_dir.name, app.rows, device, dmeta, error, golden)
    res.runs.append(result)
    if error:
        res.failures.append(f"{label}: {error}")
    log(f"{label}: {len(app.rows)} frames -> {run_dir}")


def _app_files(customer: Path | None, run_id: str, dest: Path, run_dir: Path) -> bool:
    """The app's protocol files (and the golden test's output) out of the Customer Artifacts zip.

    Only known names under ``devicekit/<RUN>/`` are read, by suffix, so the zip's own layout around
    ``$DEVICEFARM_LOG_DIR`` does not matter and no member path is ever used to write a file."""
    if customer is None:
        return False
    try:
        with zipfile.ZipFile(customer) as z:
            names = z.namelist()
            found = False
            for want in APP_FILES:
                hit = next((n for n in names if n.endswith(f"devicekit/{run_id}/{want}")), None)
                if hit is not None and z.getinfo(hit).file_size <= MAX_APP_FILE:
                    (dest / want).write_bytes(z.read(hit))
                    found = True
            test_log = next((n for n in names if n.endswith("devicekit/golden_test.txt")), None)
            if test_log is not None and z.getinfo(test_log).file_size <= MAX_APP_FILE:
                atomic_write_text(run_dir / "golden_test.txt", z.read(test_log).decode("utf-8", "replace"))
            return found
    except (zipfile.BadZipFile, OSError):
        return False


def _instrumentation_verdict(p: Path) -> dict | None:
    """The golden test's ``am instrument -r`` output: passed / failed / unknown, and the file kept beside it."""
    if not p.exists():
        return None
    text = p.read_text(encoding="utf-8", errors="replace")
    ok = re.search(r"^OK \((\d+) tests?\)", text, re.M)
    failed = "FAILURES!!!" in text or "INSTRUMENTATION_FAILED" in text
    return {"passed": bool(ok) and not failed if (ok or failed) else None, "output": p.name,
            "tests": int(ok.group(1)) if ok else None}


def _profile(model: str | None) -> str | None:
    from ..device import match_model

    prof = match_model("android", model)
    return prof["id"] if prof else None

