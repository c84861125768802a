"""Shared CLI plumbing: output modes, progress, one-line errors.

Human output and progress go to stderr; ``--json`` puts one JSON object on
stdout. Library errors (``DevicekitError``) become one line and their exit
code; anything else becomes one line too, with the traceback only under
``--debug``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import sys
import time
import traceback
from typing import Any, Callable, Iterator

from rich.console import Console
from rich.markup import escape

from ..errors import DevicekitError, first_line

# Wide tables when piped or logged (rich falls back to 80 columns without a terminal).
_WIDTH = None if sys.stderr.isatty() else int(os.environ.get("COLUMNS", "160"))
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)
out_console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else _WIDTH)


class _State:
    debug: bool = bool(os.environ.get("DEVICEKIT_DEBUG"))
    json_mode: bool = False
    quiet: bool = False
    stdout = None  # the real stdout, kept for the one JSON object in --json mode


state = _State()


def set_mode(json_mode: bool = False, quiet: bool = False) -> None:
    """Human or machine output. In --json mode anything else printed to stdout
    (by libraries such as torch.onnx) goes to stderr, so stdout stays one JSON object."""
    state.json_mode = json_mode
    state.quiet = quiet or json_mode
    if json_mode and state.stdout is None:
        state.stdout = sys.stdout
        sys.stdout = sys.stderr


def info(msg: str) -> None:
    """A line for people (stderr), silent in --json / --quiet mode."""
    if not state.quiet:
        err_console.print(msg)


def warn(msg: str) -> None:
    """Warnings always reach stderr, also in --json mode. ``msg`` is plain text (never markup)."""
    err_console.print(f"[bold yellow]warning:[/] {escape(str(msg))}")


def command(*argv) -> str:
    """A command line to show the user: every part shell-quoted, so a pasted hint runs exactly one command
    (``command("devicekit", "verify", path)`` -> ``devicekit verify 'a;b.tflite'``). Placeholders such as
    ``MODEL`` stay as they are."""
    return shlex.join(str(a) for a in argv)


class StepMark:
    """What a step's body reports: ``fail(reason)`` turns the closing tick into a cross with the reason;
    ``neutral()`` into a dot (the step ran, but says nothing about whether its result is good)."""

    def __init__(self):
        self.failed: str | None = None
        self.plain = False

    def fail(self, reason: str) -> None:
        self.failed = reason

    def neutral(self) -> None:
        self.plain = True


@contextlib.contextmanager
def step(name: str) -> Iterator[StepMark]:
    """Show a long step's progress on stderr (spinner for people, nothing for machines).

    The tick means the step's result is good: a body that calls ``mark.fail(reason)``
    gets a red cross and the reason instead.
    """
    t0 = time.perf_counter()
    mark = StepMark()
    if state.quiet:
        yield mark
        return
    with err_console.status(f"{escape(name)} ..."):
        yield mark
    took = f"[dim]({time.perf_counter() - t0:.1f} s)[/]"
    if mark.failed:
        err_console.print(f"[bold red]✗[/] {escape(name)} {took}: {escape(mark.failed)}")
    elif mark.plain:
        err_console.print(f"[dim]·[/] {escape(name)} {took}")
    else:
        err_console.print(f"[green]✓[/] {escape(name)} {took}")


@contextlib.contextmanager
def library_output(final_dir: Callable[[], Any]) -> Iterator[Any]:
    """Everything libraries write -- C++ logs of TensorFlow/XLA/absl on file descriptors 1 and 2, Python
    warnings, subprocesses such as onnx2tf -- goes to a log file; devicekit's own progress, summary and
    ``--json`` object keep the terminal. Nothing is captured under ``--debug``.

    Yields the log's path. At the end it moves to ``final_dir()/devicekit-convert.log`` when that folder
    exists (the command wrote its results there); else it stays in the temporary folder when the command
    failed, and is removed when it did not.
    """
    import shutil
    import tempfile
    from pathlib import Path

    if state.debug:
        yield None
        return
    fd, name = tempfile.mkstemp(prefix="devicekit-", suffix=".log")
    os.close(fd)
    log_path = Path(name)
    failed = True
    try:
        with _fds_to(log_path):
            yield log_path
        failed = False
    finally:
        folder = final_dir()
        if folder is not None and Path(folder).is_dir():
            shutil.move(str(log_path), str(Path(folder) / "devicekit-convert.log"))
        elif not failed:
            log_path.unlink(missing_ok=True)  # nothing was written: nothing to look back at


@contextlib.contextmanager
def _fds_to(log_path) -> Iterator[None]:
    for f in (sys.stdout, sys.stderr):
        f.flush()
    real_out, real_err = os.dup(1), os.dup(2)
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    term_out = os.fdopen(os.dup(real_out), "w", buffering=1, encoding="utf-8", errors="replace")
    term_err = os.fdopen(os.dup(real_err), "w", buffering=1, encoding="utf-8", errors="replace")
    log_file = os.fdopen(os.dup(log_fd), "w", buffering=1, encoding="utf-8", errors="replace")
    saved = sys.stdout, sys.stderr, state.stdout, err_console._file, out_console._file
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    err_console.file, out_console.file = term_err, term_out
    if state.json_mode:
        state.stdout = term_out
    sys.stdout = sys.stderr = log_file
    try:
        yield
    finally:
        for f in (sys.stdout, sys.stderr, term_out, term_err):
            with contextlib.suppress(Exception):
                f.flush()
        os.dup2(real_out, 1)
        os.dup2(real_err, 2)
        sys.stdout, sys.stderr, state.stdout, err_console._file, out_console._file = saved
        for fd in (real_out, real_err, log_fd):
            os.close(fd)
        for f in (term_out, term_err, log_file):
            with contextlib.suppress(Exception):
                f.close()


def bounded(flag: str, value, lo, hi):
    """A number from a flag or devicekit.toml, inside [lo, hi]: a usage error (exit 2) otherwise, never a run that
    cannot end (``--frames 99999999999999999999``) or a meaningless one (``--layers -3``)."""
    from ..errors import UsageError

    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{flag} must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise UsageError(f"{flag} must be between {lo:,} and {hi:,}, got {value:,}")
    return value


def emit_json(obj: Any) -> None:
    from ..fsutil import _json_default

    out = state.stdout or sys.stdout
    out.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
    out.flush()


def next_steps(*commands: str) -> None:
    """Every command ends with what to run next. Build each with :func:`command` (shell-quoted); shown as plain
    text, never as markup."""
    if state.quiet or not commands:
        return
    err_console.print("[bold]next:[/] " + "  |  ".join(f"[cyan]{escape(c)}[/]" for c in commands))


def fail(exc: BaseException) -> "NoReturn":  # noqa: F821
    import typer

    if isinstance(exc, DevicekitError):
        err_console.print(f"[bold red]error:[/] {escape(exc.one_line())}")
        if state.debug:
            traceback.print_exception(exc)
        raise typer.Exit(exc.exit_code)
    if isinstance(exc, KeyboardInterrupt):
        err_console.print("[bold red]error:[/] interrupted")
        raise typer.Exit(130)
    err_console.print(f"[bold red]error:[/] internal error: {escape(first_line(exc, None, typed=True))} (run with --debug for the traceback)")
    if state.debug:
        traceback.print_exception(exc)
    raise typer.Exit(1)


def handle_errors(fn: Callable) -> Callable:
    """Decorator for command functions: typed errors become one line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import typer

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - rendered as one line
            fail(exc)

    return wrapper
