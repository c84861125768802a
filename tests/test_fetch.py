"""devicekit.fetch: the LiteRT.js pin equals package-lock.json, downloads are checked, tarballs unpack safely,
offline is one line. (The real downloads run in tests/test_web.py and tests/test_wheel.py.)"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from devicekit.errors import EnvironmentMissing
from devicekit.fetch import download, litertjs, unpack_npm

ROOT = Path(__file__).resolve().parent.parent


def _integrity(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def test_litertjs_pin_equals_package_lock():
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    assert {k.removeprefix("node_modules/"): (v["version"], v["integrity"]) for k, v in lock.items() if k} == litertjs.LOCK
    assert json.loads((ROOT / "package.json").read_text())["dependencies"]["@litertjs/core"] == litertjs.VERSION
    assert litertjs.tarball_url("@litertjs/wasm-utils", "2.5.3") == "https://registry.npmjs.org/@litertjs/wasm-utils/-/wasm-utils-2.5.3.tgz"


def test_download_keeps_only_a_matching_sha512(tmp_path):
    src = tmp_path / "src.tgz"
    src.write_bytes(b"tarball bytes")
    got = download(src.as_uri(), tmp_path / "out" / "a.tgz", _integrity(b"tarball bytes"))
    assert got.read_bytes() == b"tarball bytes"
    with pytest.raises(EnvironmentMissing, match="sha512 mismatch"):
        download(src.as_uri(), tmp_path / "out" / "b.tgz", _integrity(b"other bytes"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.tgz"]  # no partial file left


def _tgz(path: Path, members: list[tuple[str, bytes | None, bytes]]) -> Path:
    """members: (name, file data or None, type)."""
    with tarfile.open(path, "w:gz") as t:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize(
    "bad",
    [
        ("package/../../evil.js", b"x", tarfile.REGTYPE),
        ("/tmp/evil.js", b"x", tarfile.REGTYPE),
        ("other/evil.js", b"x", tarfile.REGTYPE),
        ("package/link", None, tarfile.SYMTYPE),
    ],
)
def test_unpack_refuses_members_outside_the_package(tmp_path, bad):
    ok = _tgz(tmp_path / "ok.tgz", [("package/dist/index.js", b"export {}", tarfile.REGTYPE)])
    assert (unpack_npm(ok, tmp_path / "nm" / "ok") / "dist" / "index.js").read_bytes() == b"export {}"
    evil = _tgz(tmp_path / "evil.tgz", [("package/dist/index.js", b"export {}", tarfile.REGTYPE), bad])
    with pytest.raises(EnvironmentMissing, match="refused member"):
        unpack_npm(evil, tmp_path / "nm" / "evil")
    assert sorted(p.name for p in (tmp_path / "nm").iterdir()) == ["ok"] and not (tmp_path / "evil.js").exists()


def test_offline_is_one_line_with_a_hint(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path))
    monkeypatch.delenv("DEVICEKIT_NODE_MODULES", raising=False)
    monkeypatch.setattr(litertjs, "REGISTRY", "http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(EnvironmentMissing) as e:
        litertjs.node_modules()
    assert e.value.message.startswith("cannot download http://127.0.0.1:9/@litertjs/core/-/core-2.5.3.tgz")
    assert "\n" not in e.value.one_line() and "DEVICEKIT_CACHE" in e.value.hint
    assert not (tmp_path / "litertjs-2.5.3" / litertjs.COMPLETE).exists()


def test_override_and_cached_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVICEKIT_CACHE", str(tmp_path))
    nm = tmp_path / "nm"
    (nm / "@litertjs" / "core" / "dist").mkdir(parents=True)
    (nm / "@litertjs" / "core" / "dist" / "index.js").write_text("")
    monkeypatch.setenv("DEVICEKIT_NODE_MODULES", str(nm))
    assert litertjs.node_modules() == nm
    monkeypatch.delenv("DEVICEKIT_NODE_MODULES")
    root = tmp_path / f"litertjs-{litertjs.VERSION}"
    root.mkdir()
    (root / litertjs.COMPLETE).write_text(litertjs._stamp())  # filled before: no download
    monkeypatch.setattr(litertjs, "REGISTRY", "http://127.0.0.1:9")
    assert litertjs.node_modules() == root / "node_modules"
