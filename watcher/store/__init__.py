"""The SQLite store: groups and their samples, fixes, source checkpoints, miner state, counters.

Synchronous on purpose: the asyncio pipeline calls it through `asyncio.to_thread`. One `Store`
serialises its public methods with a lock, so it may be handed to any one worker thread at a
time (or several; they just queue).

The schema is versioned with `PRAGMA user_version` and the ordered `MIGRATIONS` list. A file
that is not a SQLite database, or fails `PRAGMA quick_check`, is renamed aside and replaced by a
fresh store: losing history beats a daemon that crash-loops on start. For the same reason a
daemon's store (`fallback_to_memory=True`) whose file cannot be opened at all (a read-only
directory, a full disk) runs in memory and says so in `degraded`.

`StateStore` (protocol) is the seam everything else uses; `open_store(url)` picks SQLite's
`Store` or `PostgresStore` (postgres, pg_schema: psycopg, its own migrations) from the state URL.

Modules: `store` (the `Store` class), `schema` (migrations, `user_version`, transactions),
`connection` (opening, integrity checks, setting a corrupt file aside), `rows` (row <->
dataclass mapping), `filters` (`list_groups` filters and orders as SQL).
"""

from watcher.store.connection import BUSY_TIMEOUT_MS, MEMORY, SQLITE_MAGIC, set_aside
from watcher.store.factory import open_configured, open_store
from watcher.store.leases import Fence, Lease, LeaseLost
from watcher.store.protocol import StateStore
from watcher.store.schema import MIGRATIONS, SCHEMA_VERSION, StoreError, migrate, user_version
from watcher.store.store import Store

__all__ = [
    "BUSY_TIMEOUT_MS",
    "MEMORY",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SQLITE_MAGIC",
    "Fence",
    "Lease",
    "LeaseLost",
    "StateStore",
    "Store",
    "StoreError",
    "migrate",
    "open_configured",
    "open_store",
    "set_aside",
    "user_version",
]
