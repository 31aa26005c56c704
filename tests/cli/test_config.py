"""Configuration: flags beat environment variables beat the profile beats the default; profiles
live in a private TOML file that `config set` writes."""

import stat
import tomllib
from pathlib import Path

from tests.cli.fake_api import API_URL, FakeApi, json_response


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    # No STRAIT_API_URL / STRAIT_API_KEY unless given: the profile must supply them.
    return {
        "STRAIT_CONFIG": str(tmp_path / "config.toml"),
        "STRAIT_API_URL": "",
        "STRAIT_API_KEY": "",
        **values,
    }


def test_config_set_writes_a_private_profile_that_later_commands_use(tmp_path: Path) -> None:
    api = FakeApi()
    api.on("GET", "/v1/runs/run_1", json_response({"id": "run_1", "status": "queued"}))
    env = _env(tmp_path)

    for key, value in (("api-url", API_URL), ("api-key", "strait_" + "b" * 64), ("project", "proj_X")):
        assert api.invoke("--profile", "staging", "config", "set", key, value, env=env).exit_code == 0
    assert api.invoke("config", "use", "staging", env=env).exit_code == 0
    result = api.invoke("runs", "get", "run_1", "--json", env=env)

    assert result.exit_code == 0, result.output
    [request] = api.requests
    assert request.headers["authorization"] == "Bearer strait_" + "b" * 64
    assert request.headers["x-project-id"] == "proj_X"
    path = tmp_path / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tomllib.loads(path.read_text()) == {
        "current_profile": "staging",
        "profiles": {"staging": {"api_url": API_URL, "api_key": "strait_" + "b" * 64, "project": "proj_X"}},
    }


def test_a_flag_beats_the_environment_which_beats_the_profile(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[profiles.default]\napi_url = "http://profile.test"\n'
        'api_key = "strait_profile"\nproject = "proj_P"\n'
    )
    api = FakeApi()

    result = api.invoke(
        "--api-key",
        "strait_flag",
        "config",
        "show",
        env=_env(tmp_path, STRAIT_API_URL="http://env.test"),
    )

    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:3]}
    assert rows["api-url"] == ["http://env.test", "environment", "STRAIT_API_URL"]
    assert rows["api-key"][1:] == ["flag"]
    project_row = result.stdout.splitlines()[3].split()
    assert project_row == ["project", "proj_P", "profile", "default"]


def test_config_show_never_prints_the_whole_key(tmp_path: Path) -> None:
    key = "strait_" + "c" * 64
    result = FakeApi().invoke("config", "show", env=_env(tmp_path, STRAIT_API_KEY=key))

    assert key not in result.output
    assert "strait_cccc…cccc" in result.stdout


def test_an_explicit_profile_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    result = FakeApi().invoke("--profile", "prod", "runs", "get", "run_1", env=_env(tmp_path))

    assert result.exit_code == 2
    assert "no profile 'prod'" in result.stderr


def test_a_broken_config_file_is_named_in_the_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[profiles.default\n")

    result = FakeApi().invoke("runs", "get", "run_1", env=_env(tmp_path))

    assert result.exit_code == 2
    assert f"cannot read the config file {tmp_path / 'config.toml'}" in result.stderr


def test_config_set_refuses_an_api_url_that_is_not_http(tmp_path: Path) -> None:
    result = FakeApi().invoke("config", "set", "api-url", "ftp://x", env=_env(tmp_path))

    assert result.exit_code == 2
    assert not (tmp_path / "config.toml").exists()


def test_the_default_api_url_is_the_local_stack(tmp_path: Path) -> None:
    result = FakeApi().invoke("config", "show", env=_env(tmp_path))

    assert result.stdout.splitlines()[1].split() == ["api-url", "http://127.0.0.1:8080", "default"]
