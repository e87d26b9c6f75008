"""The ``featurestore`` command: the click group, its error handling, and every verb.

Exit codes: 0 on success, 1 when featurestore reports an error or a check fails, 2 on a
usage error, 3 when ``skew``, ``drift``, ``status`` or ``apply --check`` is given
``--fail-on-flagged`` and flags something (``apply`` then writes nothing).
The verbs live in ``_commands`` (the demo in ``_demo``) and their output in ``_render``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click

from featurestore import __version__
from featurestore.cli import _render as render
from featurestore.cli._commands import COMMANDS
from featurestore.cli._commands._options import JSON_ERRORS
from featurestore.cli._demo import demo
from featurestore.errors import FeatureStoreError

__all__ = ["main"]


class _Group(click.Group):
    """Shows a FeatureStoreError (or an OS error) as one red paragraph and exits with 1; under
    ``--json``, as ``{"error": {"type", "message", "exit_code"}}`` on stderr (a usage error the
    command raises too, with exit code 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            self._fail(ctx, type(exc).__name__, str(exc), 1)
        except OSError as exc:  # e.g. an output path that cannot be written
            where = f": {exc.filename}" if exc.filename else ""
            self._fail(ctx, type(exc).__name__, f"{exc.strerror or exc}{where}", 1)
        except click.UsageError as exc:
            if not ctx.meta.get(JSON_ERRORS):
                raise
            self._fail(ctx, "UsageError", exc.format_message(), 2)

    @staticmethod
    def _fail(ctx: click.Context, kind: str, message: str, code: int) -> None:
        if ctx.meta.get(JSON_ERRORS):
            error = {"type": kind, "message": message, "exit_code": code}
            click.echo(json.dumps({"error": error}), err=True)
        else:
            render.error(render.console(stderr=True), message)
        ctx.exit(code)


_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False)
_LOG_HELP = "Library log records at or above this level go to stderr as key=value lines."


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="featurestore")
@click.option("--log-level", type=_LEVELS, default="WARNING", show_default=True, help=_LOG_HELP)
def main(log_level: str) -> None:
    """Declare features once in Python; build point-in-time correct training sets and serve
    the same values online."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def _set_log_level(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:  # after the verb: the group has set up logging already
        logging.getLogger().setLevel(value.upper())


for _command in [*COMMANDS, demo]:
    # --log-level is accepted after the verb too (featurestore apply --log-level info)
    _command.params.append(
        click.Option(
            ["--log-level"],
            type=_LEVELS,
            expose_value=False,
            callback=_set_log_level,
            help=_LOG_HELP,
        )
    )
    main.add_command(_command)
