"""The command line is a separate package that only speaks HTTP: it never imports the server
package (so it stays out of the Lambda layer), and what it knows of the API's vocabulary is the
server's."""

import ast
import tomllib
from pathlib import Path

import click
from click.testing import CliRunner

from strait_runs_cli import outcomes
from strait_runs_cli.main import cli
from straitruns.domain.models import ErrorClass
from straitruns.domain.statuses import TERMINAL, RunStatus

CLI_ROOT = Path(__file__).resolve().parents[2] / "cli"


def test_the_cli_never_imports_the_server_package() -> None:
    imported = set()
    for source in (CLI_ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "straitruns" not in imported
    assert imported & {"click", "httpx", "rich"} == {"click", "httpx", "rich"}


def test_the_package_declares_the_console_script_and_pins_its_dependencies() -> None:
    project = tomllib.loads((CLI_ROOT / "pyproject.toml").read_text())["project"]

    assert project["scripts"] == {"strait-runs": "strait_runs_cli.main:main"}
    assert all("==" in requirement for requirement in project["dependencies"])


def test_the_cli_knows_the_servers_statuses_and_which_are_terminal() -> None:
    assert set(outcomes.RUN_STATUSES) == {status.value for status in RunStatus}
    assert set(outcomes.TERMINAL_STATUSES) == {status.value for status in TERMINAL}
    assert set(outcomes.ERROR_CLASSES) == {error_class.value for error_class in ErrorClass}


def test_only_completed_exits_0() -> None:
    codes = {status: outcomes.exit_code_of_run(status) for status in outcomes.TERMINAL_STATUSES}

    assert codes.pop("completed") == 0
    assert set(codes.values()) == {3}


def _commands(
    command: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _commands(sub, (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(cli)

    missing = [
        " ".join(path) + (f" {param.opts[0]}" if param else "")
        for path, command in commands
        for param in [None, *(p for p in command.params if isinstance(p, click.Option))]
        if not (param.help if param else command.help)
    ]
    assert missing == []
    assert len(commands) > 30
    for path, _ in commands:
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
