"""LiteRT.js for ``devicekit package --platform web``: npm tarballs from registry.npmjs.org, checked and cached.

``LOCK`` holds the versions and sha512 ``integrity`` of package-lock.json (tests/test_fetch.py keeps the two
equal). ``node_modules()`` returns a folder laid out like npm's (``@litertjs/core``, ``@litertjs/wasm-utils``):
``$DEVICEKIT_NODE_MODULES`` when set (a local ``npm ci``, e.g. offline or behind a mirror), else
``cache/litertjs-<version>/node_modules``, filled on first use. A download whose sha512 differs from the lock
is refused; unpacking takes only plain files inside the tarball's ``package/`` folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import EnvironmentMissing
from ..fsutil import cache_root
from . import download, unpack_npm

REGISTRY = "https://registry.npmjs.org"
VERSION = "2.5.3"
LOCK = {  # package-lock.json: name -> (version, integrity)
    "@litertjs/core": (VERSION, "sha512-PlGmbMOq9WitX7FO0jhbdJw9GthatsyuCQXjTt/wJZo0FLaw48q4tz8IwqgqCIkviYGr9OFDL1kCnN4nzWoyJQ=="),
    "@litertjs/wasm-utils": (VERSION, "sha512-4fJiw6tBQnIs+0jH/OQ16nYOiSl8/+zZnn5h2ul8aTKHi05sVqZW580Tmk78pC2kT39A9OYBVdFawteZ/sI1kQ=="),
}
COMPLETE = ".complete"  # written last, holding the integrities it was filled from


def tarball_url(name: str, version: str) -> str:
    """npm's tarball address: ``@scope/pkg`` 1.2.3 -> ``REGISTRY/@scope/pkg/-/pkg-1.2.3.tgz``."""
    return f"{REGISTRY}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def _stamp() -> str:
    return "".join(f"{name}@{version} {integrity}\n" for name, (version, integrity) in sorted(LOCK.items()))


def node_modules() -> Path:
    """A node_modules folder holding ``LOCK``'s packages (see the module docstring)."""
    env = os.environ.get("DEVICEKIT_NODE_MODULES")
    if env:
        if not (Path(env) / "@litertjs" / "core" / "dist" / "index.js").is_file():
            raise EnvironmentMissing(
                f"DEVICEKIT_NODE_MODULES={env} has no @litertjs/core",
                hint=f"npm ci in the devicekit checkout (@litertjs/core {VERSION}), or unset it to use devicekit's cached copy",
            )
        return Path(env)
    root = cache_root() / f"litertjs-{VERSION}"
    nm = root / "node_modules"
    stamp = root / COMPLETE
    if stamp.is_file() and stamp.read_text() == _stamp():
        return nm
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".download.", dir=root) as tmp:
        for name, (version, integrity) in LOCK.items():
            tgz = download(tarball_url(name, version), Path(tmp) / f"{name.replace('/', '+')}-{version}.tgz", integrity)
            unpack_npm(tgz, nm / name)
    stamp.write_text(_stamp())
    return nm
