"""`devicekit bench ARTIFACT --device all | --device A --device B | --fleet NAME|TAG`: one run per device, in parallel."""

from __future__ import annotations

from rich.markup import escape

from ._common import command, emit_json, err_console, info, next_steps, state, step


def targets(cfg, devices: list[str], fleet: str | None, toml) -> list:
    """The fleet's devices, from --device values (``all``: discovery) or devicekit.toml's [[fleet]] entries."""
    from ..bench.fleet import Target, discover_all
    from ..config import select_fleet
    from ..errors import UsageError

    if fleet is not None:
        return [Target(e.device, e.name) for e in select_fleet(toml.fleet, fleet, toml.path)]
    if "all" in devices:
        if devices != ["all"]:
            raise UsageError("--device all already means every attached phone: give it alone")
        return discover_all(cfg.artifact)
    dup = next((d for k, d in enumerate(devices) if d in devices[:k]), None)
    if dup:
        raise UsageError(f"--device {dup} is given twice (one run per device at a time)")
    return [Target(d, d) for d in devices]


def bench_fleet(cfg, devices: list[str], fleet: str | None, toml, json_out: bool) -> None:
    from ..bench.fleet import FleetRun, exit_code, failures
    from ..bench.runner import check_artifact
    from ..errors import DevicekitError
    from ..report import fleet_table

    check_artifact(cfg.artifact)  # a bad model is bad input once (exit 2), before any phone is touched
    run = FleetRun(cfg, targets(cfg, devices, fleet, toml), cfg.run_id, log=lambda msg: info(escape(str(msg))))
    n = len(run.targets)
    with step(f"bench {cfg.artifact.name} on {n} devices in parallel") as mark:
        doc = run.run()
        if failures(doc):
            mark.fail(f"{len(failures(doc))} of {n} failed")
    if json_out:
        emit_json(doc)
    else:
        from rich.table import Table

        head, rows = fleet_table(doc, run.dir)
        t = Table(title=f"fleet {doc['fleet']} ({doc['wall_s']:.1f} s)")
        for col in head[:-1]:  # the errors follow the table, one line each
            t.add_column(col)
        for row in rows:
            t.add_row(*(escape(v) for v in row[:-1]))  # names come from the devices: never markup
        err_console.print(t)
        info(f"results: {escape(str(run.dir / 'fleet.json'))}")
    bad = failures(doc)
    if bad:
        for e in bad:  # one line each: which device, why
            err_console.print(f"[bold red]failed:[/] {escape(e['label'])} ({escape(e['device'])}): {escape(str(e['error']))}")
        exc = DevicekitError(
            f"{len(bad)} of {n} devices failed; the others ran (fleet summary {run.dir / 'fleet.json'})",
            hint=command("devicekit", "report", run.dir, "-o", "report.html"),
        )
        exc.exit_code = exit_code(doc)
        raise exc
    if not state.quiet:
        next_steps(command("devicekit", "report", run.dir, "-o", "report.html"))
