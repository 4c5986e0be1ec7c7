"""Config loading: TOML + environment -> typed Config, one-line errors with file, line and key."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Literal

import pytest

import watcher.sources
from watcher.config import (
    SECTIONS,
    ClassifyRule,
    Config,
    ConfigError,
    GroupingConfig,
    dump_effective,
    load_config,
    parse_duration,
    split_listen,
)
from watcher.configschema import AtLeast, SchemaError, Seconds, build, format_duration
from watcher.configtoml import key_lines, locate

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


@dataclass(frozen=True, kw_only=True)
class FakeStdinConfig:
    """Stands in for the stdin source's config."""

    type: str = "stdin"
    name: str = "stdin"


@dataclass(frozen=True, kw_only=True)
class FakeLokiConfig:
    """A source config with secrets, nested tables and a required key."""

    type: str = "loki"
    name: str = "loki"
    url: str
    query: str = ""
    tenant: str = ""
    token_env: str = "LOKI_TOKEN"
    password: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def fake_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry of throwaway source configs, independent of the real source modules."""
    registry = {
        "stdin": f"{__name__}:FakeStdinConfig",
        "loki": f"{__name__}:FakeLokiConfig",
    }
    monkeypatch.setattr(watcher.sources, "SOURCES", registry)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "watcher.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path | None, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env or {})
    message = str(info.value)
    assert "\n" not in message
    return message


# --- defaults -------------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_sources")
def test_no_file_gives_defaults_and_a_stdin_source() -> None:
    """With no path and no WATCHER_CONFIG every default applies and stdin is the one source."""
    config = load_config(None, {})
    assert config.path is None
    assert config.sources == (FakeStdinConfig(),)
    assert config.watcher.interval == 60.0
    assert config.watcher.state_path == "watcher.db"
    assert config.http.listen == "127.0.0.1:9464"
    assert config.grouping.windows == (60.0, 300.0, 3600.0)
    assert config.grouping.alert_window == 300.0
    assert config.alerts.cooldown == 900.0
    assert config.autofix.labels == ("auto-fix",)
    assert config.classify.rules == ()


@pytest.mark.usefixtures("fake_sources")
def test_watcher_config_env_names_the_file(tmp_path: Path) -> None:
    """WATCHER_CONFIG is read when no path is passed."""
    path = write(tmp_path, "[watcher]\ninterval = 5\n")
    config = load_config(None, {"WATCHER_CONFIG": str(path)})
    assert config.path == path
    assert config.watcher.interval == 5.0


@pytest.mark.usefixtures("fake_sources")
def test_explicit_empty_sources_means_none(tmp_path: Path) -> None:
    """`sources = []` is honoured; only a missing key falls back to stdin."""
    assert load_config(write(tmp_path, "sources = []\n"), {}).sources == ()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A path that cannot be read is reported with the path."""
    message = error_of(tmp_path / "nope.toml")
    assert message.startswith(f"{tmp_path / 'nope.toml'}: cannot read config")


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("45", 45.0),
        (" 10S ", 10.0),
    ],
)
def test_parse_duration_accepts_units(text: str, seconds: float) -> None:
    """Durations with ms/s/m/h/d suffixes (and bare seconds) parse to seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "5 minutes", "-1s", "1w", "m5", "1.h"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    """Anything that is not a number or a number+unit raises ValueError."""
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("seconds", [0.25, 1.5, 60.0, 90.0, 300.0, 3600.0, 86400.0, 0.0001])
def test_format_duration_round_trips(seconds: float) -> None:
    """format_duration's spelling parses back to the same number of seconds."""
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.usefixtures("fake_sources")
def test_duration_keys_accept_numbers_and_strings(tmp_path: Path) -> None:
    """Duration keys take plain seconds (int or float) or a suffixed string."""
    path = write(
        tmp_path,
        '[watcher]\ninterval = "500ms"\nshutdown_timeout = 120\n[grouping]\n'
        'windows = ["30s", 60, "1h"]\nalert_window = 60\n',
    )
    config = load_config(path, {})
    assert (config.watcher.interval, config.watcher.shutdown_timeout) == (0.5, 120.0)
    assert config.grouping.windows == (30.0, 60.0, 3600.0)


# --- errors name file, line and key ----------------------------------------------------------


@pytest.mark.usefixtures("fake_sources")
def test_unknown_source_key_names_line_and_valid_keys(tmp_path: Path) -> None:
    """A misspelt key in the second [[sources]] points at its line and lists the valid keys."""
    path = write(
        tmp_path,
        '[[sources]]\ntype = "stdin"\n\n[[sources]]\ntype = "loki"\nurl = "http://x"\n'
        'quer = "{app=1}"\n',
    )
    assert error_of(path) == (
        f"{path}:7: sources[1].quer: unknown key "
        "(expected one of: headers, name, password, query, tenant, token_env, type, url)"
    )


@pytest.mark.usefixtures("fake_sources")
def test_wrong_type_names_line_and_expectation(tmp_path: Path) -> None:
    """A string where seconds are expected says what was expected and what was given."""
    path = write(tmp_path, '# comment\n[watcher]\ninterval = "fast"\n')
    message = error_of(path)
    assert message.startswith(f"{path}:3: watcher.interval: expected a number of seconds > 0 (or ")
    assert message.endswith(', got "fast"')


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (
            "[grouping]\nmax_groups = 3\n",
            2,
            "grouping.max_groups: expected an integer >= 10, got 3",
        ),
        (
            '[watcher]\nlog_format = "xml"\n',
            2,
            'watcher.log_format: expected one of: auto, json, text, got "xml"',
        ),
        ("[watcher]\nqueue_size = 1.5\n", 2, "watcher.queue_size: expected an integer >= 1"),
        ('[http]\nenabled = "yes"\n', 2, 'http.enabled: expected true or false, got "yes"'),
        ("[parse]\nmax_line_bytes = 100\n", 2, "parse.max_line_bytes: expected an integer >= 1024"),
        ("[parse]\napp_paths = [1]\n", 2, "parse.app_paths[0]: expected a string, got 1"),
        ("[watcher]\nshutdown_timeout = 0\n", 2, "watcher.shutdown_timeout: expected a number"),
        ("[alerts]\ncooldown = -1\n", 2, "alerts.cooldown: expected a number of seconds >= 0"),
        ('[alerts]\nmin_severity = "huge"\n', 2, "alerts.min_severity: expected one of: info, low"),
        ('[alerts]\nwebhooks = ["ftp://x"]\n', 2, "alerts.webhooks[0]: expected an http(s) URL"),
        ('[http]\nlisten = "localhost"\n', 2, 'http.listen: expected "host:port"'),
        ('[http]\nlisten = "0.0.0.0:70000"\n', 2, 'http.listen: expected "host:port"'),
        ('[autofix]\ngithub_repo = "justname"\n', 2, 'autofix.github_repo: expected "owner/name"'),
        ("[watcher]\n[foo]\nx = 1\n", 2, "foo: unknown section (expected one of: watcher, http"),
        ("interval = 5\n", 1, "interval: unknown key (expected one of: watcher,"),
        ("watcher = 5\n", 1, "watcher: expected a table, got 5"),
    ],
)
@pytest.mark.usefixtures("fake_sources")
def test_bad_values_name_line_key_and_expectation(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    """Each kind of bad value is one line: file:line: dotted.key: what was expected."""
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}:{line}: {expected}")


@pytest.mark.usefixtures("fake_sources")
def test_windows_must_increase(tmp_path: Path) -> None:
    """A window not longer than the previous one is reported at the windows line."""
    path = write(tmp_path, '[grouping]\nmax_groups = 50\nwindows = ["5m", "1m"]\n')
    assert error_of(path).startswith(f"{path}:3: grouping.windows[1]: must be longer than")


@pytest.mark.usefixtures("fake_sources")
def test_alert_window_must_be_a_window(tmp_path: Path) -> None:
    """alert_window outside windows names the windows it could be."""
    path = write(tmp_path, '[grouping]\nalert_window = "7m"\n')
    assert error_of(path) == (
        f"{path}:2: grouping.alert_window: expected one of the windows (1m, 5m, 1h), got 7m"
    )


@pytest.mark.usefixtures("fake_sources")
def test_bad_rule_regex_says_why(tmp_path: Path) -> None:
    """An uncompilable rule regex points at that rule's match line with re's reason."""
    path = write(
        tmp_path,
        '[[classify.rules]]\nmatch = "ok"\nignore = true\n\n'
        '[[classify.rules]]\nmatch = "(unclosed"\ncategory = "cache_error"\n',
    )
    message = error_of(path)
    assert message.startswith(f"{path}:6: classify.rules[1].match: invalid regular expression: ")
    assert "missing )" in message


@pytest.mark.usefixtures("fake_sources")
def test_rule_that_sets_nothing_points_at_its_header(tmp_path: Path) -> None:
    """A rule with only `match` is reported at its [[classify.rules]] header."""
    path = write(tmp_path, '[[classify.rules]]\nmatch = "x"\n')
    assert error_of(path) == (
        f"{path}:1: classify.rules[0]: a rule must set at least one of: "
        "category, severity, fixable, ignore"
    )


@pytest.mark.usefixtures("fake_sources")
def test_rule_category_lists_the_categories(tmp_path: Path) -> None:
    """An unknown category lists the nine built-in ones."""
    path = write(tmp_path, '[[classify.rules]]\nmatch = "x"\ncategory = "oops"\n')
    message = error_of(path)
    assert message.startswith(f"{path}:3: classify.rules[0].category: expected one of: provider_")
    assert "internal_error" in message


@pytest.mark.usefixtures("fake_sources")
def test_rule_on_fields_are_checked(tmp_path: Path) -> None:
    """`on` only accepts the fields a rule can look at."""
    path = write(tmp_path, '[[classify.rules]]\nmatch = "x"\nignore = true\non = ["body"]\n')
    assert error_of(path).startswith(
        f"{path}:4: classify.rules[0].on[0]: expected one of: message, exception, logger, source, "
        'text, got "body"'
    )


@pytest.mark.usefixtures("fake_sources")
def test_missing_required_key_points_at_table_header(tmp_path: Path) -> None:
    """A missing required key falls back to the line of its table header."""
    path = write(tmp_path, '[watcher]\n\n[[sources]]\ntype = "loki"\n')
    assert error_of(path) == f"{path}:3: sources[0].url: missing required key (expected a string)"


@pytest.mark.usefixtures("fake_sources")
def test_unknown_source_type_lists_known_types(tmp_path: Path) -> None:
    """An unregistered type names the registered ones."""
    path = write(tmp_path, '[[sources]]\ntype = "kafka"\n')
    assert error_of(path) == (
        f'{path}:2: sources[0].type: unknown source type "kafka" (expected one of: loki, stdin)'
    )


@pytest.mark.usefixtures("fake_sources")
def test_source_without_type_is_rejected(tmp_path: Path) -> None:
    """Every [[sources]] entry needs a type."""
    path = write(tmp_path, '[[sources]]\nname = "x"\n')
    assert error_of(path) == (
        f"{path}:1: sources[0].type: missing required key (expected one of: loki, stdin)"
    )


@pytest.mark.usefixtures("fake_sources")
def test_duplicate_source_names_rejected(tmp_path: Path) -> None:
    """Two sources may not share a name, including the default name (the type)."""
    path = write(tmp_path, '[[sources]]\ntype = "stdin"\n\n[[sources]]\ntype = "stdin"\n')
    message = error_of(path)
    assert message.startswith(f'{path}:4: sources[1].name: duplicate source name "stdin"')


@pytest.mark.usefixtures("fake_sources")
def test_distinct_names_make_duplicates_fine(tmp_path: Path) -> None:
    """Two sources of one type load when their names differ; name defaults to the type."""
    path = write(
        tmp_path,
        '[[sources]]\ntype = "loki"\nurl = "http://a"\n\n'
        '[[sources]]\ntype = "loki"\nname = "b"\nurl = "http://b"\n',
    )
    assert [s.name for s in load_config(path, {}).sources] == ["loki", "b"]


def test_toml_syntax_error_names_tomllib_line(tmp_path: Path) -> None:
    """Invalid TOML is reported with the file and the line tomllib gives."""
    path = write(tmp_path, "[watcher]\ninterval = 5\nlog_level = \n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: invalid TOML: ")


# --- environment and CLI overrides ----------------------------------------------------------


@pytest.mark.usefixtures("fake_sources")
def test_env_overrides_scalars_over_the_file(tmp_path: Path) -> None:
    """WATCHER_<SECTION>_<KEY>, WATCHER_<KEY> for [watcher], LOG_LEVEL/LOG_FORMAT all apply."""
    path = write(tmp_path, "[watcher]\ninterval = 5\n[http]\nenabled = false\n")
    env = {
        "WATCHER_INTERVAL": "30",
        "WATCHER_STATE_PATH": "/var/lib/watcher/state.db",
        "WATCHER_HTTP_LISTEN": "0.0.0.0:9464",
        "WATCHER_HTTP_ENABLED": "yes",
        "WATCHER_AUTOFIX_ENABLED": "true",
        "WATCHER_GROUPING_MAX_GROUPS": "500",
        "WATCHER_ALERTS_COOLDOWN": "1h",
        "LOG_LEVEL": "debug",
        "LOG_FORMAT": "text",
        "WATCHER_API_TOKEN": "not-a-config-key",
    }
    config = load_config(path, env)
    assert config.watcher.interval == 30.0
    assert config.watcher.state_path == "/var/lib/watcher/state.db"
    assert (config.watcher.log_level, config.watcher.log_format) == ("debug", "text")
    assert (config.http.listen, config.http.enabled) == ("0.0.0.0:9464", True)
    assert config.autofix.enabled is True
    assert config.grouping.max_groups == 500
    assert config.alerts.cooldown == 3600.0


@pytest.mark.usefixtures("fake_sources")
def test_watcher_log_level_beats_log_level() -> None:
    """The specific WATCHER_LOG_LEVEL wins over the generic LOG_LEVEL."""
    config = load_config(None, {"LOG_LEVEL": "debug", "WATCHER_LOG_LEVEL": "error"})
    assert config.watcher.log_level == "error"


@pytest.mark.usefixtures("fake_sources")
def test_empty_env_value_leaves_non_string_keys_alone() -> None:
    """An empty variable (common in env files) does not override a number."""
    assert load_config(None, {"WATCHER_INTERVAL": ""}).watcher.interval == 60.0


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"WATCHER_INTERVAL": "fast"},
            "$WATCHER_INTERVAL: watcher.interval: expected a number of seconds > 0",
        ),
        (
            {"WATCHER_AUTOFIX_ENABLED": "maybe"},
            "$WATCHER_AUTOFIX_ENABLED: autofix.enabled: "
            'expected true/false/1/0/yes/no, got "maybe"',
        ),
        (
            {"WATCHER_GROUPING_MAX_GROUPS": "lots"},
            "$WATCHER_GROUPING_MAX_GROUPS: grouping.max_groups: "
            'expected an integer >= 10, got "lots"',
        ),
        ({"LOG_LEVEL": "loud"}, "$LOG_LEVEL: watcher.log_level: expected one of: trace, debug"),
        (
            {"WATCHER_HTTP_LISTEN": "nope"},
            '$WATCHER_HTTP_LISTEN: http.listen: expected "host:port"',
        ),
    ],
)
@pytest.mark.usefixtures("fake_sources")
def test_bad_env_values_name_the_variable(env: dict[str, str], expected: str) -> None:
    """An override that does not fit names the variable instead of a file line."""
    assert error_of(None, env).startswith(expected)


@pytest.mark.usefixtures("fake_sources")
def test_env_error_names_variable_even_with_a_file(tmp_path: Path) -> None:
    """When the env overrides a file key, its error is the variable's, not the file's."""
    path = write(tmp_path, '[grouping]\nalert_window = "5m"\n')
    message = error_of(path, {"WATCHER_GROUPING_ALERT_WINDOW": "7m"})
    assert message.startswith("$WATCHER_GROUPING_ALERT_WINDOW: grouping.alert_window: expected one")


@pytest.mark.usefixtures("fake_sources")
def test_with_overrides_applies_cli_flags() -> None:
    """Dotted and bare [watcher] keys replace values; strings are parsed; None is skipped."""
    config = load_config(None, {}).with_overrides(
        interval="2m",
        log_level="debug",
        log_format=None,
        state_path="/tmp/s.db",
        **{"autofix.enabled": True, "http.listen": "0.0.0.0:1", "watcher.queue_size": "8"},
    )
    assert config.watcher.interval == 120.0
    assert (config.watcher.log_level, config.watcher.log_format) == ("debug", "auto")
    assert config.watcher.state_path == "/tmp/s.db"
    assert config.watcher.queue_size == 8
    assert config.autofix.enabled is True
    assert config.http.listen == "0.0.0.0:1"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"interval": -3}, "watcher.interval: expected a number of seconds > 0"),
        ({"autofix.enabled": "perhaps"}, "autofix.enabled: expected true/false/1/0/yes/no"),
        ({"http.port": 1}, "http.port: unknown key (expected one of: allowed_hosts, enabled,"),
        ({"sources.x": 1}, "sources: unknown section"),
    ],
)
@pytest.mark.usefixtures("fake_sources")
def test_with_overrides_rejects_bad_values(overrides: dict[str, object], expected: str) -> None:
    """Overrides are validated like the file, and fail with the dotted key."""
    with pytest.raises(ConfigError) as info:
        load_config(None, {}).with_overrides(**overrides)
    assert str(info.value).startswith(expected)


# --- effective config -----------------------------------------------------------------------


SECRET_CONFIG = """
[autofix]
github_api_url = "https://bot:hunter2@ghe.example.com/api/v3"

[alerts]
webhooks = ["https://hooks.slack.com/services/T0/B0/XXXXSECRET"]

[[sources]]
type = "loki"
url = "https://user:pa55@loki.example.com"
password = "pa55"
token_env = "LOKI_TOKEN"
headers = { X_API_KEY = "k3y", Accept = "text/plain" }
"""


@pytest.mark.usefixtures("fake_sources")
def test_dump_effective_masks_secrets(tmp_path: Path) -> None:
    """Secret-named keys, URL credentials and webhook paths are masked; *_env names are kept."""
    text = dump_effective(load_config(write(tmp_path, SECRET_CONFIG), {}))
    for secret in ("hunter2", "pa55", "k3y", "XXXXSECRET"):
        assert secret not in text
    dumped = tomllib.loads(text)
    source = dumped["sources"][0]
    assert source["password"] == "***"
    assert source["url"] == "https://***@loki.example.com"
    assert source["token_env"] == "LOKI_TOKEN"
    assert source["headers"] == {"X_API_KEY": "***", "Accept": "text/plain"}
    assert dumped["autofix"]["github_api_url"] == "https://***@ghe.example.com/api/v3"
    assert dumped["autofix"]["max_tokens_per_hour"] == 200000
    assert dumped["alerts"]["webhooks"] == ["https://hooks.slack.com/***"]
    assert dumped["http"]["token_env"] == "WATCHER_API_TOKEN"


@pytest.mark.usefixtures("fake_sources")
def test_dump_effective_round_trips(tmp_path: Path) -> None:
    """The dump is valid TOML with every section, and loads back to the same config."""
    path = write(
        tmp_path,
        '[watcher]\ninterval = 0.75\n[[classify.rules]]\nmatch = "(?i)stripe \\"x\\""\n'
        'category = "external_service_error"\nfixable = true\n'
        '[[sources]]\ntype = "loki"\nurl = "http://l"\nquery = \'{app="api"}\'\n',
    )
    original = load_config(path, {})
    text = dump_effective(original)
    assert set(tomllib.loads(text)) == {*SECTIONS, "sources"}
    again = load_config(write(tmp_path, text), {})
    assert again == original


@pytest.mark.usefixtures("fake_sources")
def test_dump_effective_of_defaults_loads() -> None:
    """Even the no-file config dumps to TOML that loads back to itself."""
    config = load_config(None, {})
    assert "[[sources]]" in dump_effective(config)
    assert tomllib.loads(dump_effective(config))["sources"] == [{"type": "stdin", "name": "stdin"}]


# --- config.example.toml --------------------------------------------------------------------


@pytest.mark.usefixtures("fake_sources")
def test_example_config_loads_with_the_defaults() -> None:
    """config.example.toml loads, and every value in it is the default."""
    config = load_config(EXAMPLE, {})
    assert config == Config(sources=config.sources, path=EXAMPLE)


def test_example_config_lists_every_option() -> None:
    """Every key of every section appears in config.example.toml (rules as a commented example)."""
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    for name, cls in SECTIONS.items():
        keys = {f.name for f in fields(cls)} - {"rules"}
        assert set(raw[name]) == keys, name
    rule = tomllib.loads(uncommented_example("# [[classify.rules]]", "[autofix]"))
    assert set(rule["classify"]["rules"][0]) == {f.name for f in fields(ClassifyRule)}


def uncommented_example(first: str, stop: str) -> str:
    """The commented-out example block of config.example.toml from `first` up to `stop`."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    block = lines[lines.index(first) : lines.index(stop)]
    return "\n".join(line.removeprefix("#").removeprefix(" ") for line in block) + "\n"


def test_example_classify_rule_loads(tmp_path: Path) -> None:
    """The commented [[classify.rules]] example is a valid rule once uncommented."""
    path = write(tmp_path, uncommented_example("# [[classify.rules]]", "[autofix]"))
    (rule,) = load_config(path, {}).classify.rules
    assert (rule.match, rule.category, rule.fixable) == (
        "(?i)stripe",
        "external_service_error",
        True,
    )


DEST = "[[alerts.destinations]]\n"


@pytest.mark.parametrize(
    ("text", "line", "expected"),
    [
        (DEST + 'type = "opsgenie"\n', 2, "alerts.destinations[0].type: unknown destination type"),
        (DEST + 'url = "http://x"\n', 1, "alerts.destinations[0].type: missing required key"),
        (DEST + 'type = "webhook"\n', 1, "alerts.destinations[0].url: missing required key"),
        (
            DEST + 'type = "webhook"\nurl = "ftp://x/y"\n',
            3,
            "alerts.destinations[0].url: webhook URL for host",
        ),
        (
            DEST + 'type = "slack"\nurl = "https://h/x"\nkinds = ["paged"]\n',
            4,
            "alerts.destinations[0].kinds: slack cannot deliver ['paged']",
        ),
        (
            DEST + 'type = "pagerduty"\nkinds = ["pr_opened"]\n',
            3,
            "alerts.destinations[0].kinds: pagerduty cannot deliver ['pr_opened']",
        ),
        (
            DEST + 'type = "alertmanager"\nurl = "http://am:9093"\nmin_count = 0\n',
            4,
            "alerts.destinations[0].min_count: expected an integer >= 1",
        ),
        (
            DEST + 'type = "alertmanager"\nurl = "http://am:9093"\nlabels = { severity = "x" }\n',
            4,
            "alerts.destinations[0].labels: ['severity'] are set by watcher",
        ),
        (
            DEST + 'type = "alertmanager"\nurl = "http://am:9093"\nlabels = { "team-x" = "a" }\n',
            4,
            "alerts.destinations[0].labels: ['team-x'] are not label names",
        ),
        (
            DEST + 'type = "webhook"\nurl = "https://h/x"\nmax_listed = 0\n',
            4,
            "alerts.destinations[0].max_listed: expected an integer >= 1",
        ),
        (
            DEST + 'type = "pagerduty"\n' + DEST + 'type = "pagerduty"\n',
            3,
            'alerts.destinations[1].name: duplicate destination name "pagerduty"',
        ),
        (
            DEST + 'type = "slack"\nurl = "https://h/x"\nwindow = "0s"\n',
            4,
            "alerts.destinations[0].window",
        ),
    ],
)
def test_bad_destinations_name_line_and_key(
    tmp_path: Path, text: str, line: int, expected: str
) -> None:
    """A bad [[alerts.destinations]] table is one line naming the file line and the dotted key
    (an unknown type, a missing key, a kind the type cannot deliver, a reserved label...)."""
    path = write(tmp_path, text)
    assert error_of(path).startswith(f"{path}:{line}: {expected}")


def test_example_alert_destinations_load(tmp_path: Path) -> None:
    """The commented [[alerts.destinations]] examples are valid once uncommented: one of each
    type, with the [alerts] defaults filled in where a table does not set them."""
    block = uncommented_example("# [[alerts.destinations]]", "[redact]")
    path = write(tmp_path, '[alerts]\ncooldown = "30m"\n' + block)
    slack, hook, manager, pager = load_config(path, {}).alerts.destinations
    assert (slack.type, hook.name, manager.type, pager.type) == (
        "slack",
        "ops-hook",
        "alertmanager",
        "pagerduty",
    )
    assert (slack.cooldown, pager.cooldown, pager.min_count) == (1800.0, 3600.0, 5)
    assert manager.kinds == ("new", "threshold", "regressed", "resolved")


# --- the real source types ------------------------------------------------------------------


def test_real_stdin_source_is_the_default() -> None:
    """With the real registry, no config means one StdinSourceConfig named "stdin"."""
    from watcher.sources.stdin import StdinSourceConfig

    assert load_config(None, {}).sources == (StdinSourceConfig(),)


def test_example_source_blocks_load_with_the_real_types(tmp_path: Path) -> None:
    """Every commented [[sources]] example in config.example.toml loads once uncommented."""
    path = write(tmp_path, uncommented_example("# [[sources]]", "[grouping]"))
    loaded = load_config(path, {}).sources
    assert [(s.type, s.name) for s in loaded] == [
        ("file", "app"),
        ("command", "k8s"),
        ("stdin", "stdin"),
        ("railway", "api"),
        ("loki", "loki"),
        ("cloudwatch", "cloudwatch"),
        ("otlp", "otlp"),
        ("journald", "journald"),
        ("kubernetes", "kubernetes"),
    ]
    for source in loaded[-3:]:  # the example's values are the defaults
        assert source == type(source)(type=source.type, name=source.name)
    assert loaded[1].argv == ["kubectl", "logs", "-f", "deploy/api"]


def test_real_file_source_type_loads(tmp_path: Path) -> None:
    """A [[sources]] entry of the real `file` type builds FileSourceConfig with its defaults."""
    from watcher.sources.file import FileSourceConfig

    path = write(tmp_path, '[[sources]]\ntype = "file"\nname = "app"\npath = "/var/log/*.log"\n')
    (source,) = load_config(path, {}).sources
    assert isinstance(source, FileSourceConfig)
    assert (source.name, source.path, source.read_from) == ("app", "/var/log/*.log", "end")


def test_real_file_source_validate_errors_are_located(tmp_path: Path) -> None:
    """The file source's own validate() errors get the file line and dotted key."""
    path = write(tmp_path, '[[sources]]\ntype = "file"\npath = "x"\nread_from = "middle"\n')
    assert error_of(path).startswith(f"{path}:4: sources[0].read_from: must be")


# --- the generic pieces ---------------------------------------------------------------------


@dataclass(frozen=True)
class Inner:
    """A nested table for the builder tests."""

    level: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    """Every hint shape the builder supports."""

    name: str
    count: Annotated[int, AtLeast(0)] = 0
    ratio: float = 1.0
    wait: Seconds = 1.0
    tags: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)
    items: tuple[Inner, ...] = ()
    note: str | None = None

    def validate(self) -> None:
        if self.name == "bad":
            raise ValueError("items[0]: cross-field problem")


def test_build_converts_every_supported_hint() -> None:
    """The builder fills each field from TOML data by its type hint."""
    data = {
        "name": "n",
        "count": 2,
        "ratio": 3,
        "wait": "2s",
        "tags": ["x"],
        "env": {"A": "1"},
        "inner": {"level": "b"},
        "items": [{}, {"level": "b"}],
        "note": "hi",
    }
    built = build(Outer, data)
    assert built == Outer(
        "n", 2, 3.0, 2.0, ["x"], {"A": "1"}, Inner("b"), (Inner(), Inner("b")), "hi"
    )
    assert isinstance(built.ratio, float)


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (
            {"name": "n", "inner": {"lvl": "a"}},
            ("inner", "lvl"),
            "unknown key (expected one of: level)",
        ),
        (
            {"name": "n", "items": [{}, {"level": "c"}]},
            ("items", 1, "level"),
            'expected one of: a, b, got "c"',
        ),
        ({"name": "n", "env": {"A": 1}}, ("env", "A"), "expected a string, got 1"),
        ({"name": "n", "count": True}, ("count",), "expected an integer >= 0, got true"),
        ({"name": "n", "tags": "x"}, ("tags",), 'expected an array of strings, got "x"'),
        ({"name": "bad"}, ("items", 0), "cross-field problem"),
        ({}, ("name",), "missing required key (expected a string)"),
    ],
)
def test_build_errors_carry_the_key_path(
    data: dict[str, object], path: tuple[str | int, ...], message: str
) -> None:
    """Builder errors name the exact nested key path, including validate() ones."""
    with pytest.raises(SchemaError) as info:
        build(Outer, data)
    assert (info.value.path, info.value.message) == (path, message)


def test_key_lines_skips_multiline_values() -> None:
    """Lines inside multi-line arrays and strings are never taken for keys or headers."""
    text = (
        '[watcher]\nargv = [\n  "a = 1",\n  "[fake]",\n]\ndoc = """\nb = 2\n[[x]]\n"""\n'
        'b = 3\n[[sources]]\n[[sources]]\n"quoted key" = 1\n[sources.sub]\nc = 1\n'
    )
    lines = key_lines(text)
    assert lines[("watcher", "b")] == 10
    assert ("watcher", "a") not in lines and ("fake",) not in lines and ("x", 0) not in lines
    assert lines[("sources", 1, "quoted key")] == 13
    assert lines[("sources", 1, "sub", "c")] == 15
    assert locate(lines, ("sources", 0, "missing")) == 11
    assert locate(lines, ("nowhere", "x")) is None


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:9464", ("127.0.0.1", 9464)),
        ("[::1]:0", ("::1", 0)),
        ("host:65535", ("host", 65535)),
    ],
)
def test_split_listen(listen: str, expected: tuple[str, int]) -> None:
    """host:port and [v6]:port split into host and integer port."""
    assert split_listen(listen) == expected


def test_grouping_validate_runs_on_direct_construction() -> None:
    """validate() is callable on its own, for configs built in code."""
    with pytest.raises(ValueError, match="alert_window"):
        GroupingConfig(alert_window=7.0).validate()


def test_check_config_masks_passwords_in_webhook_urls(tmp_path: Path) -> None:
    """`check-config` prints webhook URLs without their user:password@ (and, as before,
    without their path, which is the credential of a Slack-style hook)."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        '[alerts]\nwebhooks = ["https://ops:Hunter2pass@ops.example.com/hooks/watcher", '
        '"json+https://u:S3cretpw@x.example.com/y"]\n'
    )
    text = dump_effective(load_config(cfg, {}))
    assert "Hunter2pass" not in text and "S3cretpw" not in text
    hooks = tomllib.loads(text)["alerts"]["webhooks"]
    assert hooks == ["https://***@ops.example.com/***", "json+https://***@x.example.com/***"]


def test_check_config_masks_webhook_destination_urls(tmp_path: Path) -> None:
    """A webhook or Slack destination's URL path is its credential: `check-config` shows the
    host only (a password in any destination URL is masked too)."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(
        '[[alerts.destinations]]\ntype = "slack"\n'
        'url = "https://hooks.slack.com/services/T0/B0/S3cretPath"\n'
        '[[alerts.destinations]]\ntype = "webhook"\nurl = "https://ops.example.com/h/Tok3nPath"\n'
        '[[alerts.destinations]]\ntype = "alertmanager"\nurl = "http://u:Am5ecret@am:9093"\n'
    )
    text = dump_effective(load_config(cfg, {}))
    for secret in ("S3cretPath", "Tok3nPath", "Am5ecret"):
        assert secret not in text
    slack, hook, manager = tomllib.loads(text)["alerts"]["destinations"]
    assert (slack["url"], hook["url"]) == (
        "https://hooks.slack.com/***",
        "https://ops.example.com/***",
    )
    assert manager["url"] == "http://***@am:9093"


@pytest.mark.parametrize(
    ("toml", "secret"),
    [
        ('[http]\nposts_per_minute = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"\n', "4eC39HqLyjWDarj"),
        ('[autofix]\ngithub_repo = "ghp_5srlSHfWGX0h9JKN7E28r4unICHo1mYQ9qB2"\n', "5srlSHfWGX0h9"),
        ('[alerts]\nwebhooks = ["ftp://bot:Pa55w0rdX@hooks.example.com/x"]\n', "Pa55w0rdX"),
    ],
)
def test_config_errors_do_not_echo_secrets(tmp_path: Path, toml: str, secret: str) -> None:
    """A key pasted into the wrong field, or a URL with a password, is masked in the error
    that names the bad value."""
    cfg = tmp_path / "w.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_config(cfg, {})
    assert secret not in str(info.value)
    assert "got " in str(info.value)
