"""`open_store`: the `StateStore` a state URL names (SQLite by default, PostgreSQL when shared).

The PostgreSQL implementation (and psycopg) is imported only when a postgresql:// state is
configured, as the sources registry imports boto3 only for a CloudWatch source.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from watcher.metrics import Metrics
from watcher.store.protocol import StateStore
from watcher.store.url import parse, password, sqlite_url


def open_store(
    url: str,
    *,
    password_env: str = "",
    metrics: Metrics | None = None,
    samples_per_group: int = 5,
    fallback_to_memory: bool = False,
    redact: Callable[[str], str] = str,
    instance: str = "",
    timeout: float = 10.0,
) -> StateStore:
    """Open (and migrate) the store at a state URL; a SQLite daemon store may fall back to
    memory, a PostgreSQL one raises StoreError when the server cannot be reached."""
    target = parse(url)
    options: dict[str, Any] = {
        "metrics": metrics,
        "samples_per_group": samples_per_group,
        "redact": redact,
    }
    if target.backend == "sqlite":
        from watcher.store.store import Store

        return Store(target.location, fallback_to_memory=fallback_to_memory, **options)
    from watcher.store.postgres import PostgresStore

    secret = password(password_env)
    return PostgresStore(
        target.location, password=secret, instance=instance, timeout=timeout, **options
    )


def open_configured(config: Any, **options: Any) -> StateStore:
    """The store `[watcher] state` (or `state_path`) of a Config names."""
    watcher = config.watcher
    url = watcher.state or sqlite_url(watcher.state_path)
    return open_store(
        url,
        password_env=watcher.state_password_env,
        instance=watcher.instance,
        timeout=watcher.state_timeout,
        **options,
    )
