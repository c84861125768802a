"""The web target: the packaged web app (LiteRT.js), its local server, headless Chromium, and browser devices.

- the app itself is rendered by ``devicekit.mobile_templates.webapp`` (``devicekit package ARTIFACT --platform web``),
  attached to the registry's web platform.
- ``WebServer`` (server.py): 127.0.0.1 server with COOP/COEP, receives result files.
- ``Chromium`` (browser.py): headless Chromium over the DevTools pipe.
- ``ChromeDevice`` / ``ChromeAndroidDevice`` (device.py): ``--device chrome`` / ``chrome-android[:SERIAL]``.
"""

from __future__ import annotations

__all__ = ["WebServer", "Chromium", "open_web_device", "is_web_device"]


def __getattr__(name):
    if name == "WebServer":
        from .server import WebServer

        return WebServer
    if name == "Chromium":
        from .browser import Chromium

        return Chromium
    if name in ("open_web_device", "is_web_device"):
        from . import device

        return getattr(device, name)
    raise AttributeError(name)
