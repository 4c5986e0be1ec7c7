"""`shared = true` in a [[sources]] entry: accepted on sources every watcher of a fleet could
read, refused with file:line:key on a host's own sources."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from watcher.config import ConfigError, load_config
from watcher.sources import SHAREABLE, SOURCES, config_class

LOCAL = {
    "file": 'path = "/var/log/app.log"\n',
    "command": 'argv = ["tail", "-f", "x"]\n',
    "stdin": "",
    "journald": "",
    "otlp": "",
}
SHARED = {
    "loki": 'url = "http://loki:3100"\nquery = \'{app="api"}\'\n',
    "cloudwatch": 'log_groups = ["/aws/lambda/app"]\nregion = "us-west-2"\n',
    "railway": 'service = "api"\n',
    "kubernetes": 'namespace = "prod"\n',
}


def load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "watcher.toml"
    path.write_text(text)
    return load_config(path, {})


def source_block(kind: str, shared: str) -> str:
    """A config whose one source (at line 5) has `shared` (line 6) and its required keys."""
    keys = SHARED.get(kind) or LOCAL[kind]
    return f'[watcher]\ninterval = 5\n\n[[sources]]\ntype = "{kind}"\n{shared}{keys}'


@pytest.mark.parametrize("kind", sorted(SHARED))
def test_shared_is_read_on_sources_every_watcher_could_read(tmp_path: Path, kind: str) -> None:
    """loki, cloudwatch, railway and kubernetes take `shared = true`; it defaults to false."""
    shared = load(tmp_path, source_block(kind, "shared = true\n")).sources[0]
    assert shared.shared is True
    assert load(tmp_path, source_block(kind, "")).sources[0].shared is False


@pytest.mark.parametrize("kind", sorted(LOCAL))
def test_shared_true_on_a_local_source_names_file_line_and_key(tmp_path: Path, kind: str) -> None:
    """A host's own source (file, command, stdin, journald, otlp) refuses `shared = true`
    with the file, the line of the key and the dotted key, and says which types can be shared."""
    path = tmp_path / "watcher.toml"
    path.write_text(source_block(kind, "shared = true\n"))
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    message = str(info.value)
    assert message.startswith(f"{path}:6: sources[0].shared: a {kind} source ")
    assert "cannot be shared" in message and "loki" in message and "cloudwatch" in message


@pytest.mark.parametrize("kind", sorted(LOCAL))
def test_shared_false_on_a_local_source_is_accepted(tmp_path: Path, kind: str) -> None:
    """`shared = false` says what is true anyway: accepted on any type."""
    assert load(tmp_path, source_block(kind, "shared = false\n")).sources[0].type == kind


def test_shared_must_be_a_boolean(tmp_path: Path) -> None:
    """`shared = "yes"` is a type error at its line."""
    path = tmp_path / "watcher.toml"
    path.write_text(source_block("loki", 'shared = "yes"\n'))
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    assert str(info.value).startswith(f"{path}:6: sources[0].shared: ")


def test_the_shareable_list_names_exactly_the_types_with_a_shared_key() -> None:
    """The registry's SHAREABLE (used in the error message) agrees with the config classes."""
    with_key = {
        kind
        for kind in SOURCES
        if any(f.name == "shared" for f in dataclasses.fields(config_class(kind)))
    }
    assert with_key == set(SHAREABLE)
