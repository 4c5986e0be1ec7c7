"""The state seam: `[watcher] state` URLs select the store, `state_path` keeps its meaning,
credentials never show, and `watcher migrate` applies the schema on either backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from watcher.cli import main
from watcher.config import ConfigError, dump_effective, load_config
from watcher.store import SCHEMA_VERSION, Store, open_configured


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures structlog onto the captured stderr: undo it after each test."""
    yield
    structlog.reset_defaults()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_sqlite_url_means_the_same_as_state_path(tmp_path: Path) -> None:
    """state = "sqlite:///abs/path" opens that file, as state_path = "/abs/path" does (the lock
    file and `watcher groups` follow it); a state_path alone is still a SQLite file."""
    db = tmp_path / "var" / "state.db"
    config = load_config(write(tmp_path, f'[watcher]\nstate = "sqlite://{db}"\n'), {})
    assert config.watcher.state_path == str(db) and not config.watcher.shared
    with open_configured(config) as store:
        assert isinstance(store, Store) and store.path == str(db)
        store.add_counters({"lines": 3})
    plain = load_config(write(tmp_path, f'[watcher]\nstate_path = "{db}"\n'), {})
    with open_configured(plain) as store:
        assert store.get_counters() == {"lines": 3}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("mysql://db/watcher", 'expected "sqlite:///path/to/state.db"'),
        ("sqlite://", "needs a path"),
        ("postgresql://watcher:hunter2@db/watcher", "holds a password"),
        ("postgresql://watcher@db/watcher?password=hunter2", "holds a password"),
    ],
)
def test_a_bad_state_url_names_file_line_and_key_without_the_password(
    tmp_path: Path, value: str, expected: str
) -> None:
    """A malformed URL, or one with a password in it, is a config error at watcher.state
    (file:line) that never repeats the password."""
    path = write(tmp_path, f'[watcher]\ninterval = 5\nstate = "{value}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    message = str(info.value)
    assert f"{path}:3" in message and "watcher.state" in message and expected in message
    assert "hunter2" not in message


def test_the_effective_config_shows_the_variable_name_not_the_password(tmp_path: Path) -> None:
    """check-config prints state_password_env's variable name; its value appears nowhere."""
    path = write(
        tmp_path,
        '[watcher]\nstate = "postgresql://watcher@db:5432/watcher"\n'
        'state_password_env = "WATCHER_STATE_PASSWORD"\n',
    )
    config = load_config(path, {"WATCHER_STATE_PASSWORD": "hunter2"})
    text = dump_effective(config)
    assert 'state = "postgresql://***@db:5432/watcher"' in text  # user info masked too
    assert 'state_password_env = "WATCHER_STATE_PASSWORD"' in text and "hunter2" not in text
    assert config.watcher.shared


def test_migrate_brings_a_sqlite_file_up_to_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watcher migrate --state PATH` creates and migrates the file and says its version."""
    db = tmp_path / "state.db"
    assert main(["migrate", "--state", str(db), "--log-level", "warning"]) == 0
    assert f"schema v{SCHEMA_VERSION}, up to date" in capsys.readouterr().out
    with Store(db) as store:
        assert store.schema_version == SCHEMA_VERSION


def test_migrate_brings_a_postgresql_database_up_to_date(
    pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watcher migrate --state postgresql://…` creates the schema in an empty database, and a
    second run finds nothing to do; the database then holds every table of the SQLite schema."""
    import psycopg

    for _ in range(2):
        assert main(["migrate", "--state", pg_url, "--log-level", "warning"]) == 0
        assert f"schema v{SCHEMA_VERSION}, up to date" in capsys.readouterr().out
    with psycopg.connect(pg_url) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables"
                                              " WHERE schemaname = 'public'")}  # fmt: skip
        [(versions,)] = conn.execute("SELECT count(*) FROM watcher_schema").fetchall()
    assert {"groups", "samples", "checkpoints", "state", "fixes", "counters", "fingerprints",
            "activity"} <= tables  # fmt: skip
    assert versions == SCHEMA_VERSION


def test_an_unreachable_server_is_a_clear_error_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """A server nobody listens on: `watcher migrate` exits 2 naming the URL, never the
    password it tried (from state_password_env)."""
    monkeypatch.setenv("WATCHER_STATE_PASSWORD", "hunter2")
    url = f"postgresql://watcher@/watcher?host={tmp_path}&port=1"
    path = write(
        tmp_path, f'[watcher]\nstate = "{url}"\nstate_password_env = "WATCHER_STATE_PASSWORD"\n'
    )
    assert main(["migrate", "--config", str(path), "--log-level", "warning"]) == 2
    err = capsys.readouterr().err
    assert "cannot connect to postgresql://watcher@/watcher" in err and "hunter2" not in err


def test_run_on_an_unreachable_server_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`watcher run` whose PostgreSQL state cannot be reached stops the start with exit 2 and
    one line naming the URL (no traceback, no in-memory fallback hiding a wrong URL)."""
    url = f"postgresql://watcher@/watcher?host={tmp_path}&port=1"
    path = write(tmp_path, f'[watcher]\nstate = "{url}"\n[http]\nenabled = false\n')
    assert main(["run", "--config", str(path), "--log-level", "error"]) == 2
    err = capsys.readouterr().err
    assert f"watcher: state error: cannot connect to {url}" in err and "Traceback" not in err
