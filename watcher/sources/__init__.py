"""Source registry: config `type` -> "module:ConfigClass", imported only when configured.

Adding a source is one module plus one line here.
"""

from __future__ import annotations

from watcher.importer import import_attr

SOURCES: dict[str, str] = {
    "file": "watcher.sources.file:FileSourceConfig",
    "command": "watcher.sources.command:CommandSourceConfig",
    "stdin": "watcher.sources.stdin:StdinSourceConfig",
    "railway": "watcher.sources.railway:RailwaySourceConfig",
    "loki": "watcher.sources.loki:LokiSourceConfig",
    "cloudwatch": "watcher.sources.cloudwatch_config:CloudWatchSourceConfig",
    "otlp": "watcher.sources.otlp.source:OtlpSourceConfig",
    "journald": "watcher.sources.journald:JournaldSourceConfig",
    "kubernetes": "watcher.sources.kubernetes.config:KubernetesSourceConfig",
}
# types every watcher of a fleet could read (a server-side stream, not this host's files or
# processes): `shared = true` makes one watcher at a time read them (watcher/fleet/)
SHAREABLE = ("cloudwatch", "kubernetes", "loki", "railway")


def config_class(type_name: str) -> type:
    """The config dataclass for a source type; KeyError when the type is unknown."""
    return import_attr(SOURCES[type_name])
