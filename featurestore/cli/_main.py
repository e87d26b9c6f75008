"""The ``featurestore`` command: the click group, its error handling, and every verb.

Exit codes: 0 on success, 1 when featurestore reports an error or a check fails, 2 on a
usage error, 3 when ``skew``, ``drift``, ``status`` or ``apply --check`` is given
``--fail-on-flagged`` and flags something (``apply`` then writes nothing).
The verbs live in ``_commands`` (the demo in ``_demo``) and their output in ``_render``.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from featurestore import __version__
from featurestore.cli import _render as render
from featurestore.cli._commands import COMMANDS
from featurestore.cli._demo import demo
from featurestore.errors import FeatureStoreError

__all__ = ["main"]


class _Group(click.Group):
    """Shows a FeatureStoreError (or an OS error) as one red paragraph and exits with 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            render.error(render.console(stderr=True), str(exc))
        except OSError as exc:  # e.g. an output path that cannot be written
            where = f": {exc.filename}" if exc.filename else ""
            render.error(render.console(stderr=True), f"{exc.strerror or exc}{where}")
        ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="featurestore")
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Library log records at or above this level go to stderr as key=value lines.",
)
def main(log_level: str) -> None:
    """Declare features once in Python; build point-in-time correct training sets and serve
    the same values online."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


for _command in [*COMMANDS, demo]:
    main.add_command(_command)
