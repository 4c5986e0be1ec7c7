"""The watcher's configuration: TOML file + environment overrides -> typed, validated `Config`.

Every bad key, type or value becomes one `ConfigError` line naming where it came from (file and
line, or the environment variable) and the dotted key: `watcher.toml:3: watcher.interval: …`.
The generic dataclass builder lives in `configschema`, the TOML text helpers in `configtoml`.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

from watcher import sources as source_registry
from watcher.configschema import (
    AtLeast,
    KeyPath,
    OneOf,
    SchemaError,
    Seconds,
    SecondsOrZero,
    base_type,
    build,
    describe,
    format_duration,
    format_path,
    from_text,
    is_scalar,
    parse_duration,
)
from watcher.configtoml import dumps, key_lines, locate, to_document
from watcher.envnames import secret_name as _secret_env_name
from watcher.model import CATEGORIES, SEVERITIES
from watcher.store.url import StateTarget, sqlite_url
from watcher.store.url import parse as parse_state

__all__ = [
    "AlertsConfig",
    "AutofixConfig",
    "ClassifyConfig",
    "ClassifyRule",
    "Config",
    "ConfigError",
    "GroupingConfig",
    "HttpConfig",
    "ParseConfig",
    "RedactConfig",
    "WatcherConfig",
    "apply_overrides",
    "dump_effective",
    "load_config",
    "parse_duration",
    "split_listen",
]

PositiveInt = Annotated[int, AtLeast(1)]
NonNegativeInt = Annotated[int, AtLeast(0)]
RULE_FIELDS = ("message", "exception", "logger", "source", "text")


class ConfigError(Exception):
    """A configuration problem, rendered as one line: `where: dotted.key: what was expected`."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.message, self.file, self.line, self.key = message, file, line, key
        where = file if line is None or file is None else f"{file}:{line}"
        super().__init__(": ".join(part for part in (where, key, message) if part))


@dataclass(frozen=True)
class WatcherConfig:
    """[watcher]: the daemon itself."""

    state_path: str = "watcher.db"
    # where the state lives: "sqlite:///path" (the same as state_path = "/path") or
    # "postgresql://user@host:port/db" for several watchers sharing one state; empty: state_path
    state: str = ""
    state_password_env: str = ""  # the variable holding the PostgreSQL password (else PGPASSWORD)
    # this watcher's name in a shared state: its checkpoints and opaque state are kept under it
    # (empty: the host name; give each watcher on one host its own)
    instance: str = ""
    # a shared state's leases: the leader's (watcher/fleet/leader.py) and a shared source's
    # reader's outlive their holder's last renewal by this long (holders renew every third of
    # it), so a dead holder's work moves within it. Heartbeats too: an instance silent this
    # long is "lost" and its name free again (watcher/fleet/heartbeat.py)
    lease_ttl: Seconds = 15.0
    # a PostgreSQL call that gets no answer for this long fails (a dead network is otherwise
    # noticed by TCP only after minutes, with the commit and the reading stalled behind it)
    state_timeout: Seconds = 10.0
    interval: Seconds = 60.0
    log_level: Literal["trace", "debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: text on a terminal, else JSON
    queue_size: PositiveInt = 64
    shutdown_timeout: Seconds = 10.0
    persist_interval: Seconds = 5.0
    integrity_check_interval: SecondsOrZero = 3600.0
    max_unsaved_groups: Annotated[int, AtLeast(100)] = 50000
    # processes that parse, assemble and classify the lines of file and command sources
    # (watcher/workers/): 1 = all in this process; "auto" = one per core
    workers: Any = 1

    def __post_init__(self) -> None:
        if isinstance(self.workers, str) and self.workers.isdigit():  # from the environment
            object.__setattr__(self, "workers", int(self.workers))
        if self.workers != "auto" and (type(self.workers) is not int or self.workers < 1):
            raise ValueError(
                f'workers: expected an integer >= 1 or "auto", got {describe(self.workers)}'
            )
        # a sqlite:// state means the same as that state_path: everything that reads the path
        # (the lock file, `watcher groups`) follows it
        target = self.target
        if target.backend == "sqlite" and self.state:
            object.__setattr__(self, "state_path", target.location)

    @property
    def target(self) -> StateTarget:
        """The parsed state URL (state_path as a sqlite:// URL when `state` is empty)."""
        return parse_state(self.state or sqlite_url(self.state_path))

    @property
    def shared(self) -> bool:
        """Whether the state is on a server several watchers share (no state file, no lock)."""
        return self.target.backend != "sqlite"


def split_listen(listen: str) -> tuple[str, int]:
    """("host", port) from "host:port" or "[v6]:port"; ValueError("listen: …") when malformed."""
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(
            f'listen: expected "host:port" with a port 0-65535, got {describe(listen)}'
        )
    return host, int(port)


@dataclass(frozen=True)
class HttpConfig:
    """[http]: health, /metrics, the JSON API and the dashboard."""

    enabled: bool = True
    listen: str = "127.0.0.1:9464"
    public_url: str = ""  # how others reach the dashboard: links in PRs and alerts
    token_env: str = "WATCHER_API_TOKEN"
    protect_reads: bool = True
    posts_per_minute: Annotated[float, AtLeast(0.1)] = 10.0
    max_body_bytes: Annotated[int, AtLeast(1024)] = 65536
    max_connections: Annotated[int, AtLeast(8)] = 256
    idle_timeout: Seconds = 15.0
    # Host header names served ([] = this machine's loopback names when listening on loopback,
    # any name on a wildcard listen); "*" accepts any
    allowed_hosts: tuple[str, ...] = ()

    def validate(self) -> None:
        split_listen(self.listen)


@dataclass(frozen=True)
class ParseConfig:
    """[parse]: line and multi-line event limits."""

    max_line_bytes: Annotated[int, AtLeast(1024)] = 65536
    multiline_timeout: Seconds = 2.0
    max_event_lines: PositiveInt = 500
    max_event_bytes: Annotated[int, AtLeast(1024)] = 262144
    app_paths: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupingConfig:
    """[grouping]: sliding windows, the live-group cap and the alert threshold."""

    windows: tuple[Seconds, ...] = (60.0, 300.0, 3600.0)
    max_groups: Annotated[int, AtLeast(10)] = 10000
    samples_per_group: PositiveInt = 5
    alert_count: PositiveInt = 10
    alert_window: Seconds = 300.0

    def validate(self) -> None:
        if not self.windows:
            raise ValueError("windows: expected at least one window")
        for i in range(1, len(self.windows)):
            if self.windows[i] <= self.windows[i - 1]:
                before = format_duration(self.windows[i - 1])
                raise ValueError(
                    f"windows[{i}]: must be longer than the window before it ({before})"
                )
        if self.alert_window not in self.windows:
            names = ", ".join(format_duration(w) for w in self.windows)
            got = format_duration(self.alert_window)
            raise ValueError(f"alert_window: expected one of the windows ({names}), got {got}")


@dataclass(frozen=True)
class ClassifyRule:
    """One [[classify.rules]] entry: a regex and what a match sets; first match wins."""

    match: str
    on: tuple[Literal["message", "exception", "logger", "source", "text"], ...] = (
        "message",
        "exception",
        "logger",
    )
    category: Annotated[str, OneOf(CATEGORIES)] | None = None
    severity: Annotated[str, OneOf(SEVERITIES)] | None = None
    fixable: bool | None = None
    ignore: bool = False

    def validate(self) -> None:
        from watcher.classify import compile_rule  # not at the top: classify is heavier

        try:
            compile_rule(self.match)  # RE2, the engine the rule runs on: refused here, not later
        except ValueError as exc:
            raise ValueError(f"match: {exc}") from None
        if not self.on:
            raise ValueError(f"on: expected at least one of: {', '.join(RULE_FIELDS)}")
        if (self.category, self.severity, self.fixable, self.ignore) == (None, None, None, False):
            raise ValueError("a rule must set at least one of: category, severity, fixable, ignore")


@dataclass(frozen=True)
class ClassifyConfig:
    """[classify]: user rules, tried before the built-in ones."""

    rules: tuple[ClassifyRule, ...] = ()


_GITHUB_REPO = re.compile(r"[\w.-]+/[\w.-]+")
_IDENTITY = re.compile(r"\s*[^<>]*\S\s*<[^<>\s]+>\s*")  # "Name <email>", as git.Identity parses


@dataclass(frozen=True)
class AutofixConfig:
    """[autofix]: the Claude + pull-request pipeline (off by default)."""

    enabled: bool = False
    repo_path: str = "."
    github_repo: str = ""
    github_api_url: str = "https://api.github.com"
    base_branch: str = "main"
    remote: str = "origin"
    model: str = "claude-sonnet-5-5"
    min_occurrences: PositiveInt = 3
    max_fixes_per_hour: NonNegativeInt = 5
    max_tokens_per_hour: NonNegativeInt = 200000
    draft: bool = True
    dry_run: bool = False
    verify_command: str = ""
    labels: tuple[str, ...] = ("auto-fix",)
    author: str = "watcher <watcher@localhost>"
    committer: str = ""
    deny_paths: tuple[str, ...] = ()
    max_files: PositiveInt = 5
    max_changed_lines: PositiveInt = 200
    verify_timeout: Seconds = 600.0
    verify_failure: Literal["draft", "skip"] = "draft"
    verify_cpu: Seconds = 600.0
    verify_env: tuple[str, ...] = ()
    sandbox: Literal["auto", "namespaces", "uid", "off"] = "auto"
    repair_rounds: NonNegativeInt = 2
    min_fixability: float = 0.5
    provider: Literal["anthropic", "bedrock", "vertex"] = "anthropic"
    base_url: str = ""
    region: str = ""
    project: str = ""
    git_timeout: Seconds = 120.0
    max_output_tokens: PositiveInt = 8192
    llm_timeout: Seconds = 120.0
    llm_max_retries: NonNegativeInt = 4
    llm_deadline: Seconds = 900.0
    min_confidence_patch: float = 0.5
    min_confidence_pr: float = 0.7
    retry_failed_after: SecondsOrZero = 21600.0
    output_dir: str = "watcher-fixes"
    token_env: str = "GITHUB_TOKEN"
    service_paths: tuple[str, ...] = ()
    max_tool_calls: NonNegativeInt = 8
    max_tool_bytes: PositiveInt = 16000

    def service_dirs(self) -> dict[str, str]:
        """service_paths as source name -> checkout directory."""
        pairs = (entry.partition("=") for entry in self.service_paths)
        return {source.strip(): directory.strip().strip("/") for source, _, directory in pairs}

    def validate(self) -> None:
        for entry in self.service_paths:
            source, _, directory = entry.partition("=")
            if not source.strip() or not directory.strip() or ".." in directory.split("/"):
                raise ValueError(
                    f'service_paths: expected "source=directory/in/repo", got {describe(entry)}'
                )
        if self.github_repo and not _GITHUB_REPO.fullmatch(self.github_repo):
            raise ValueError(
                f'github_repo: expected "owner/name", got {describe(self.github_repo)}'
            )
        if not _is_http_url(self.github_api_url):
            raise ValueError(
                f"github_api_url: expected an http(s) URL, got {self.github_api_url!r}"
            )
        for key in ("repo_path", "base_branch", "remote", "model", "output_dir", "token_env"):
            if not getattr(self, key):
                raise ValueError(f"{key}: must not be empty")
        for key in ("author", "committer"):
            value = getattr(self, key)
            if value and not _IDENTITY.fullmatch(value):
                raise ValueError(f'{key}: expected "Name <email>", got {describe(value)}')
        if self.base_url and not _is_http_url(self.base_url):
            raise ValueError(f"base_url: expected an http(s) URL, got {self.base_url!r}")
        for name in self.verify_env:
            if _secret_env_name(name):
                raise ValueError(
                    f"verify_env: {name!r} names a secret; model-written code must not get it"
                )
        for key in ("min_confidence_patch", "min_confidence_pr", "min_fixability"):
            if not 0 <= getattr(self, key) <= 1:
                raise ValueError(f"{key}: expected a number from 0 to 1, got {getattr(self, key)}")
        if self.min_confidence_pr < self.min_confidence_patch:
            raise ValueError("min_confidence_pr: must not be below min_confidence_patch")


@dataclass(frozen=True)
class RedactConfig:
    """[redact]: extra secret patterns for everything that leaves the process."""

    patterns: tuple[str, ...] = ()

    def validate(self) -> None:
        for i, pattern in enumerate(self.patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"patterns[{i}]: invalid regular expression: {exc}") from None


@dataclass(frozen=True)
class AlertsConfig:
    """[alerts]: where alerts go (`[[alerts.destinations]]`) and the rules they share.

    `webhooks` (plain URLs) is the older way to list webhook destinations and keeps working;
    `min_severity` and `cooldown` are the defaults of every destination.
    """

    webhooks: tuple[str, ...] = ()
    destinations: tuple[Any, ...] = ()  # each type's config dataclass, see watcher.alerts
    min_severity: Annotated[str, OneOf(SEVERITIES)] = "high"
    cooldown: SecondsOrZero = 900.0
    resolve_after: SecondsOrZero = 600.0  # quiet this long -> resolved; 0 = only when resolved
    rate_limit: NonNegativeInt = 20  # alerts per rate_window per destination; 0 = no cap
    rate_window: Seconds = 300.0
    batch_window: SecondsOrZero = 5.0
    max_queue: PositiveInt = 1000
    max_retries: NonNegativeInt = 4
    drain_timeout: Seconds = 10.0

    def validate(self) -> None:
        for i, url in enumerate(self.webhooks):
            if not _is_http_url(re.sub(r"^(slack|json)\+", "", url)):
                raise ValueError(f"webhooks[{i}]: expected an http(s) URL, got {describe(url)}")


# destination keys that default to the [alerts] key of the same name
INHERITED_ALERT_KEYS = ("min_severity", "cooldown")


@dataclass(frozen=True)
class ReportConfig:
    """[report]: how reports and the dashboard link a frame to the code."""

    # a URL template: {path} (the frame's file, deploy prefix removed), {line}, {ref}
    # e.g. "https://github.com/acme/api/blob/{ref}/{path}#L{line}"; "" = no links
    repo_url: str = ""
    # {ref} when a pattern's events name no release (a git_sha, release or version field)
    default_ref: str = "main"

    def validate(self) -> None:
        if self.repo_url and not _is_http_url(self.repo_url):
            got = describe(self.repo_url)
            raise ValueError(f"repo_url: expected an http(s) URL template, got {got}")
        if self.repo_url and "{path}" not in self.repo_url:
            raise ValueError("repo_url: the template must contain {path}")


def _is_http_url(text: str) -> bool:
    return re.fullmatch(r"https?://[^/\s]+(/\S*)?", text) is not None


SECTIONS: dict[str, type] = {
    "watcher": WatcherConfig,
    "http": HttpConfig,
    "parse": ParseConfig,
    "grouping": GroupingConfig,
    "classify": ClassifyConfig,
    "autofix": AutofixConfig,
    "alerts": AlertsConfig,
    "redact": RedactConfig,
    "report": ReportConfig,
}


@dataclass(frozen=True)
class Config:
    """The whole effective configuration; `sources` holds each source type's config dataclass."""

    watcher: WatcherConfig = field(default_factory=WatcherConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    sources: tuple[Any, ...] = ()
    grouping: GroupingConfig = field(default_factory=GroupingConfig)
    classify: ClassifyConfig = field(default_factory=ClassifyConfig)
    autofix: AutofixConfig = field(default_factory=AutofixConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    redact: RedactConfig = field(default_factory=RedactConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    path: Path | None = None

    def with_overrides(self, **dotted: Any) -> Config:
        """A copy with `section.key` (or bare `[watcher]` key) values replaced; None is skipped."""
        return apply_overrides(self, dotted)


# ---------------------------------------------------------------------------------------------
# Loading


def load_config(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate; raises ConfigError."""
    env = os.environ if env is None else env
    if path is None and env.get("WATCHER_CONFIG"):
        path = env["WATCHER_CONFIG"]
    file = Path(path) if path is not None else None
    text, raw = _read(file) if file is not None else ("", {})
    from_env = _apply_env(raw, env)
    try:
        return _build_config(raw, file)
    except SchemaError as exc:
        raise _located(exc, file, key_lines(text), from_env) from None


def _read(file: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror or exc}", file=str(file)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not valid UTF-8 ({exc.reason})", file=str(file)) from None
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, file, text) from None


def _syntax_error(exc: tomllib.TOMLDecodeError, file: Path, text: str) -> ConfigError:
    message = str(exc)
    position = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if position:
        detail = f"{message[: position.start()]} (column {position.group(2)})"
        return ConfigError(f"invalid TOML: {detail}", file=str(file), line=int(position.group(1)))
    line = text.count("\n") + 1 if message.endswith("(at end of document)") else None
    return ConfigError(f"invalid TOML: {message}", file=str(file), line=line)


def _located(
    exc: SchemaError,
    file: Path | None,
    lines: Mapping[KeyPath, int],
    from_env: Mapping[KeyPath, str],
) -> ConfigError:
    """Point the error at the environment variable that set the key, else at its file line."""
    key = format_path(exc.path)
    for end in range(len(exc.path), 0, -1):
        if exc.path[:end] in from_env:
            return ConfigError(exc.message, file="$" + from_env[exc.path[:end]], key=key)
    name = str(file) if file is not None else None
    return ConfigError(exc.message, file=name, line=locate(lines, exc.path), key=key)


def _build_config(raw: Mapping[str, Any], file: Path | None) -> Config:
    # No [[sources]] at all means "tail stdin", so `watcher run` with no config does something.
    defaults: dict[str, Any] = {**{key: {} for key in SECTIONS}, "sources": [{"type": "stdin"}]}
    # File order first, so the error reported is the first one in the file.
    tables = {**raw, **{key: value for key, value in defaults.items() if key not in raw}}
    built = {key: _build_table(key, value) for key, value in tables.items()}
    return Config(**built, path=file)


def _build_table(key: str, value: Any) -> Any:
    if key == "sources":
        return _build_sources(value)
    if key == "alerts" and isinstance(value, Mapping) and "destinations" in value:
        return _build_alerts(value)
    if key not in SECTIONS:
        kind = "section" if isinstance(value, Mapping) else "key"
        known = ", ".join((*SECTIONS, "sources"))
        raise SchemaError((key,), f"unknown {kind} (expected one of: {known})")
    return build(SECTIONS[key], value, (key,))


def _build_sources(entries: Any) -> tuple[Any, ...]:
    if not isinstance(entries, list):
        raise SchemaError(("sources",), f"expected an array of tables, got {describe(entries)}")
    built = [_build_source(entry, ("sources", i)) for i, entry in enumerate(entries)]
    first_use: dict[str, int] = {}
    for i, source in enumerate(built):
        if source.name in first_use:
            first = f"sources[{first_use[source.name]}]"
            message = (
                f"duplicate source name {describe(source.name)} (also {first}; default: the type)"
            )
            raise SchemaError(("sources", i, "name"), message)
        first_use[source.name] = i
    _check_push_paths(built)
    return tuple(built)


def _check_push_paths(built: list[Any]) -> None:
    """Two push sources (otlp) cannot serve one HTTP path."""
    served: dict[str, int] = {}
    for i, source in enumerate(built):
        path = getattr(source, "path", None) if source.type == "otlp" else None
        if path is None:
            continue
        if path in served:
            message = f"path {describe(path)} is already served by sources[{served[path]}]"
            raise SchemaError(("sources", i, "path"), message)
        served[path] = i


def _build_source(entry: Any, path: KeyPath) -> Any:
    if not isinstance(entry, Mapping):
        raise SchemaError(path, f"expected a table, got {describe(entry)}")
    known = ", ".join(sorted(source_registry.SOURCES))
    if "type" not in entry:
        raise SchemaError((*path, "type"), f"missing required key (expected one of: {known})")
    cls = _source_class(entry["type"], (*path, "type"), known)
    return build(cls, {"name": entry["type"], **_shared_key(cls, entry, path)}, path)


def _shared_key(cls: type, entry: Mapping[str, Any], path: KeyPath) -> Mapping[str, Any]:
    """`shared = true` only on a type every watcher of a fleet could read; a local source (a
    file, a command, stdin, journald) is each host's own. `shared = false` is accepted anywhere."""
    if "shared" not in entry or any(f.name == "shared" for f in dataclasses.fields(cls)):
        return entry
    if entry["shared"] is not False:
        kinds = ", ".join(source_registry.SHAREABLE)
        message = (
            f"a {entry['type']} source is read by each watcher on its own host and cannot be"
            f" shared (shared = true is for sources every watcher could read: {kinds})"
        )
        raise SchemaError((*path, "shared"), message)
    return {key: value for key, value in entry.items() if key != "shared"}


def _source_class(kind: Any, path: KeyPath, known: str) -> type:
    if not isinstance(kind, str):
        raise SchemaError(path, f"expected one of: {known}, got {describe(kind)}")
    try:
        return source_registry.config_class(kind)
    except KeyError:
        raise SchemaError(
            path, f"unknown source type {describe(kind)} (expected one of: {known})"
        ) from None
    except (ImportError, AttributeError) as exc:
        raise SchemaError(path, f"source type {describe(kind)} cannot be loaded: {exc}") from None


def _build_alerts(table: Mapping[str, Any]) -> AlertsConfig:
    """[alerts] with its [[alerts.destinations]], each built by its type's config class."""
    rest = {key: value for key, value in table.items() if key != "destinations"}
    alerts = build(AlertsConfig, rest, ("alerts",))
    entries = table["destinations"]
    path: KeyPath = ("alerts", "destinations")
    if not isinstance(entries, list):
        raise SchemaError(path, f"expected an array of tables, got {describe(entries)}")
    defaults = {key: getattr(alerts, key) for key in INHERITED_ALERT_KEYS}
    built = [_build_destination(entry, (*path, i), defaults) for i, entry in enumerate(entries)]
    names: dict[str, int] = {}
    for i, destination in enumerate(built):
        if destination.name in names:
            first = format_path((*path, names[destination.name]))
            name = describe(destination.name)
            message = f"duplicate destination name {name} (also {first}; default: the type)"
            raise SchemaError((*path, i, "name"), message)
        names[destination.name] = i
    return dataclasses.replace(alerts, destinations=tuple(built))


def _build_destination(entry: Any, path: KeyPath, defaults: Mapping[str, Any]) -> Any:
    from watcher import alerts as registry  # imports the alert senders only when configured

    if not isinstance(entry, Mapping):
        raise SchemaError(path, f"expected a table, got {describe(entry)}")
    known = ", ".join(sorted(registry.DESTINATIONS))
    kind = entry.get("type")
    if kind is None:
        raise SchemaError((*path, "type"), f"missing required key (expected one of: {known})")
    if not isinstance(kind, str) or kind not in registry.DESTINATIONS:
        message = f"unknown destination type {describe(kind)} (expected one of: {known})"
        raise SchemaError((*path, "type"), message)
    return build(registry.config_class(kind), {**defaults, "name": kind, **entry}, path)


# ---------------------------------------------------------------------------------------------
# Environment and command-line overrides


def _env_names(section: str, key: str) -> tuple[str, ...]:
    """Variables that set `section.key`, lowest precedence first."""
    if section != "watcher":
        return (f"WATCHER_{section}_{key}".upper(),)
    generic = (key.upper(),) if key in ("log_level", "log_format") else ()
    return (*generic, f"WATCHER_{key}".upper())


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> dict[KeyPath, str]:
    """Write environment overrides into the raw table; returns which variable set which key."""
    origins: dict[KeyPath, str] = {}
    for section, cls in SECTIONS.items():
        for key, hint in get_type_hints(cls, include_extras=True).items():
            for name in _env_names(section, key) if is_scalar(hint) else ():
                if name in env and (env[name] or base_type(hint) is str):
                    value = _from_text(hint, env[name], (section, key), "$" + name)
                    table = raw.setdefault(section, {})
                    # A non-table section is the file's error; let the builder report it.
                    if isinstance(table, dict):
                        table[key], origins[(section, key)] = value, name
    return origins


def _from_text(hint: Any, text: str, path: KeyPath, where: str | None) -> Any:
    try:
        return from_text(hint, text)
    except ValueError as exc:
        raise ConfigError(str(exc), file=where, key=format_path(path)) from None


def apply_overrides(config: Config, overrides: Mapping[str, Any]) -> Config:
    """`config` with dotted keys replaced (`watcher.interval`, `http.listen`, bare `interval`).

    For CLI flags: values may be typed or strings ("30s", "true"); None values are skipped.
    """
    by_section: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        if value is not None:
            section, _, key = dotted.rpartition(".")
            by_section.setdefault(section or "watcher", {})[key] = value
    changes = {name: _override_section(config, name, values) for name, values in by_section.items()}
    return dataclasses.replace(config, **changes)


def _override_section(config: Config, section: str, values: Mapping[str, Any]) -> Any:
    if section not in SECTIONS:
        raise ConfigError(f"unknown section (expected one of: {', '.join(SECTIONS)})", key=section)
    cls, current = SECTIONS[section], getattr(config, section)
    hints = get_type_hints(cls, include_extras=True)
    merged = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
    for key, value in values.items():
        typed = isinstance(value, str) and key in hints
        merged[key] = _from_text(hints[key], value, (section, key), None) if typed else value
    try:
        return build(cls, merged, (section,))
    except SchemaError as exc:
        raise ConfigError(exc.message, key=format_path(exc.path)) from None


# ---------------------------------------------------------------------------------------------
# Effective config, secrets masked


def dump_effective(config: Config) -> str:
    """The effective config as TOML: every section and source, defaults included, secrets masked."""
    origin = f"from {config.path}" if config.path is not None else "(no config file)"
    document = {
        f.name: to_document(getattr(config, f.name))
        for f in dataclasses.fields(config)
        if f.name != "path"
    }
    return f"# watcher effective config {origin}\n" + dumps(document)


# ---------------------------------------------------------------------------------------------
# Environment variables nobody reads


def unknown_env_vars(config: Config, env: Mapping[str, str] | None = None) -> list[str]:
    """The WATCHER_* variables set in `env` that no key reads: a typo (WATCHER_HTTP_LISTN)
    would otherwise be ignored without a word. Names a config key points at (`token_env`,
    `password_env`, `verify_env`) count as read."""
    env = os.environ if env is None else env
    known = known_env_vars(config)
    return sorted(n for n in env if n.startswith("WATCHER_") and n not in known)


def known_env_vars(config: Config) -> set[str]:
    """Every WATCHER_* (and other) variable name the config reads."""
    known = {"WATCHER_CONFIG", *_named_by_config(config)}
    for section, cls in SECTIONS.items():
        for key, hint in get_type_hints(cls, include_extras=True).items():
            if is_scalar(hint):
                known.update(_env_names(section, key))
    return known


def _named_by_config(value: Any) -> set[str]:
    """Every variable name held by a `*_env` key anywhere in the config."""
    names: set[str] = set()
    items = value if isinstance(value, tuple | list) else (value,)
    for item in items:
        if not dataclasses.is_dataclass(item):
            continue
        for f in dataclasses.fields(item):
            held = getattr(item, f.name)
            if f.name.endswith("_env") and isinstance(held, str):
                names.add(held)
            elif f.name.endswith("_env") and isinstance(held, tuple | list):
                names.update(str(n) for n in held)
            else:
                names |= _named_by_config(held)
    return names
