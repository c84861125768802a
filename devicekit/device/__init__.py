"""The device layer: Android (adb client or adb-shell), iOS (devicectl) and the host behind one interface.

``list_devices()`` lists what is attached; ``open_device(name)`` turns a
``--device`` value (``host``, a profile such as ``pixel7``, an adb serial,
``host:port``, or an iOS UDID) into a :class:`Device`. Other device kinds plug in
through ``devicekit.registry.register_device_kind`` (devicekit.web registers the
browsers: ``chrome``, ``chrome-android[:SERIAL]``) and are listed and opened here too.
"""

from __future__ import annotations

import os

from ..errors import DeviceError, DevicekitError, UsageError
from ..registry import DEVICE_KINDS
from .base import Device, DeviceInfo, RunSpec
from .profiles import get_profile, match_model, profiles, suggest

__all__ = ["Device", "DeviceInfo", "RunSpec", "list_devices", "open_device", "profiles", "match_model"]


def extra_serials(connect: list[str] | None = None) -> list[str]:
    """``host:port`` devices to reach directly: --connect values plus DEVICEKIT_ADB_HOSTS (comma-separated)."""
    from .android import parse_serials

    out = list(connect or []) + parse_serials(os.environ.get("DEVICEKIT_ADB_HOSTS"))
    return list(dict.fromkeys(out))


def list_devices(connect: list[str] | None = None, include_host: bool = True, transport: str | None = None) -> list[DeviceInfo]:
    from .android import list_android
    from .host import host_info
    from .ios import list_ios

    out: list[DeviceInfo] = []
    for platform, lister in (("android", lambda: list_android(extra_serials(connect), transport)), ("ios", list_ios)):
        try:
            out += lister()
        except DevicekitError as exc:  # one broken tool (adb, devicectl) must not hide the other platforms
            out.append(DeviceInfo(platform, f"({platform} tools)", state="unavailable", extra={"error": exc.one_line()}))
    if include_host:
        out.append(host_info())
        for kind in DEVICE_KINDS.values():  # plugged-in kinds (devicekit.web: local headless Chromium)
            out += kind.lister()
    return out


def _describe_all(devs: list[DeviceInfo]) -> str:
    if not devs:
        return "nothing is attached"
    return "attached: " + "; ".join(f"{d.id} ({d.name or d.model or '?'}, {d.state})" for d in devs)


def open_device(name: str, connect: list[str] | None = None, transport: str | None = None, mean=None, std=None) -> Device:
    from .adb import is_tcp_serial
    from .android import AndroidDevice
    from .host import HostDevice
    from .ios import IOSDevice

    if not name:
        raise UsageError("--device is required (host, a profile such as pixel7, a serial or a UDID)")
    if name == "host":
        return HostDevice(mean=mean, std=std)
    for kind in DEVICE_KINDS.values():  # plugged-in kinds claim their names (devicekit.web: chrome, chrome-android[:SERIAL])
        if kind.claims is not None and kind.opener is not None and kind.claims(name):
            return kind.opener(name)
    prof = get_profile(name)
    if prof is not None:
        attached = [d for d in list_devices(connect, include_host=False, transport=transport)]
        hits = [d for d in attached if d.profile == prof["id"]]
        usable = [d for d in hits if d.usable]
        if len(usable) == 1:
            d = usable[0]
            return IOSDevice(d) if d.platform == "ios" else AndroidDevice(d.id, transport)
        if not hits:
            raise DeviceError(f"no {prof['name']} ({prof['id']}) is attached; {_describe_all(attached)}",
                              hint="connect it, or pass --device SERIAL/UDID")
        if not usable:
            raise DeviceError(f"the attached {prof['name']} is {hits[0].state}: {hits[0].id}",
                              hint="unlock the phone and accept the USB debugging prompt")
        raise DeviceError(f"several {prof['name']} are attached ({', '.join(d.id for d in usable)})",
                          hint="pick one with --device SERIAL")
    if is_tcp_serial(name):
        from .adb import client_connect
        from .android import choose_transport

        if choose_transport(transport) != "client":
            return AndroidDevice(name, transport)  # adb-shell: its own socket, closed with the device
        fresh = client_connect(name)  # connected, then checked (getprop), used, and disconnected if we connected it
        try:
            dev = AndroidDevice(name, transport)
        except DevicekitError:
            if fresh:
                from .adb import client_disconnect

                client_disconnect(name)
            raise
        dev.t.disconnect_on_close = fresh
        return dev
    attached = list_devices(connect, include_host=False, transport=transport)
    for d in attached:
        if d.id == name or (d.platform == "ios" and name in (d.extra.get("name"), d.extra.get("identifier"))):
            if not d.usable:
                raise DeviceError(f"device {name} is {d.state}", hint="unlock it and accept the debugging prompt")
            return IOSDevice(d) if d.platform == "ios" else AndroidDevice(d.id, transport)
    close = suggest(name)
    hint = f"did you mean {', '.join(close)}?" if close else "run `devicekit devices`"
    raise DeviceError(f"unknown device {name!r}: not a profile, and not attached; {_describe_all(attached)}", hint=hint)
