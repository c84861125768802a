"""The ``devicekit`` command line: a thin floor over the library.

One module per command group; each exposes ``register(app)``. Heavy imports
happen inside the commands, so ``devicekit --help`` and the light commands
start fast and work without torch or tensorflow.
"""

from __future__ import annotations

import importlib
from typing import Optional

import typer

from .. import __version__
from ._common import state

# Command modules, in the order of the pipeline: load -> convert -> check ->
# verify -> package -> bench -> report.
COMMAND_MODULES = ["zoo", "convert", "check", "verify", "package", "devices", "bench", "report", "demo"]

app = typer.Typer(
    name="devicekit",
    help="Take a PyTorch face-tracking model from a checkpoint to a phone: convert, check, verify, package, bench, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        typer.echo(f"devicekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
):
    """devicekit: convert, check, verify, package and benchmark face-tracking models for phones."""
    if debug:
        import os

        state.debug = True
        os.environ["DEVICEKIT_DEBUG"] = "1"


for _name in COMMAND_MODULES:
    importlib.import_module(f"{__name__}.{_name}").register(app)


def main() -> None:
    app()
