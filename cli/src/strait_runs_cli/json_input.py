"""JSON values given on the command line: inline, `@FILE`, or `-` for stdin."""

import sys
from typing import Any

import click

from strait_runs_cli import json_text


def read_json_value(_ctx: click.Context | None, _param: click.Parameter | None, value: str | None) -> Any:
    """The JSON value of an option: `'{"a": 1}'`, `@payload.json` or `-` (stdin);
    click.BadParameter when it cannot be read or is not JSON."""
    if value is None:
        return None
    text = value
    if value == "-":
        text = sys.stdin.read()
    elif value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as source:
                text = source.read()
        except (OSError, UnicodeDecodeError) as error:
            raise click.BadParameter(f"cannot read {value[1:]}: {error}") from None
    try:
        return json_text.parse(text)
    except ValueError as error:
        raise click.BadParameter(f"not valid JSON: {error}") from None
