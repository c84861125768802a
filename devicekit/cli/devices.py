"""`devicekit devices`: attached Android (adb / adb-shell) and iOS (devicectl) devices, and the host."""

from __future__ import annotations

from typing import List, Optional

import typer

from ._common import command, emit_json, handle_errors, info, next_steps, out_console, set_mode


def register(app: typer.Typer) -> None:
    @app.command("devices")
    @handle_errors
    def devices_cmd(
        connect: Optional[List[str]] = typer.Option(None, "--connect", "-c", help="Also reach this host:port over ADB (repeatable; env DEVICEKIT_ADB_HOSTS too)."),
        profiles: bool = typer.Option(False, "--profiles", help="List the known device profiles instead."),
        json_out: bool = typer.Option(False, "--json", help="Print a machine-readable result."),
    ):
        """List attached devices with model, OS, SoC and state (unauthorized, offline)."""
        set_mode(json_out)
        from ..device import list_devices
        from ..device import profiles as all_profiles
        from ..errors import UsageError
        from ..web import device as _web_device  # noqa: F401  (the browsers register as a device kind)

        if profiles:
            rows = list(all_profiles().values())
            if json_out:
                emit_json({"profiles": rows})
                return
            for p in rows:
                out_console.print(f"{p['id']:<16} {p['platform']:<8} {p['name']:<18} {', '.join(p['models'][:3])}  [dim]{p['soc']}[/]")
            return
        for c in connect or []:
            from ..device.adb import is_tcp_serial

            if not is_tcp_serial(c):
                raise UsageError(f"--connect expects host:port, got {c!r}")
        devs = list_devices(connect)
        if json_out:
            emit_json({"devices": [d.to_json() for d in devs]})
            return
        from rich.markup import escape as esc
        from rich.table import Table

        t = Table(title="devicekit devices")
        for col in ("device", "platform", "profile", "model", "os", "soc", "state", "via"):
            t.add_column(col)
        for d in devs:
            # ids, names and states come from the devices themselves: shown as written, never read as markup
            state = esc(d.state) if d.usable else f"[red]{esc(d.state)}[/]"
            t.add_row(*(esc(str(v)) for v in (d.id, d.platform, d.profile or "-", d.name or d.model or "-", d.os or "-",
                                              d.soc or "-")), state, esc(d.transport))
        out_console.print(t)
        for d in devs:
            if not d.usable and d.extra.get("error"):
                info(esc(f"{d.id}: {d.extra['error']}"))
        from ..device.adb import adb_path

        if not adb_path():
            info("adb is not on PATH: Android phones are reached directly over the ADB protocol (adb-shell) at "
                 "host:port only; pass --connect HOST:PORT or set DEVICEKIT_ADB_HOSTS (USB needs the adb client)")
        first = next((d for d in devs if d.platform != "host" and d.usable), None)
        next_steps(command("devicekit", "bench", "MODEL.tflite", "--device", (first.profile or first.id) if first else "host"))
