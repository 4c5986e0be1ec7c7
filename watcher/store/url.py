"""Where the state lives: `[watcher] state` URLs ("sqlite:///path", "postgresql://…") parsed,
shown with their credentials masked, and the PostgreSQL password looked up.

`sqlite://` followed by the path: "sqlite:///var/lib/watcher/state.db" is absolute,
"sqlite://watcher.db" relative to the working directory, "sqlite://:memory:" in memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

SCHEMES = ("sqlite", "postgresql", "postgres")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@")
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@")
_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)[^&]*")


@dataclass(frozen=True)
class StateTarget:
    """A parsed state URL: the backend and what it opens (a file path or a libpq URL)."""

    backend: Literal["sqlite", "postgresql"]
    location: str

    @property
    def shown(self) -> str:
        """The location as logs and errors may show it (no password)."""
        return masked(self.location)


def masked(url: str) -> str:
    """The URL with any password (in the user info or a password= parameter) replaced by ***."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1:***@", url))


def sqlite_url(path: str) -> str:
    """The state URL of a SQLite file path (what `state_path` means)."""
    return f"sqlite://{path}"


def parse(url: str) -> StateTarget:
    """The target of a state URL; ValueError naming the expected forms when it is not one."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            'state: expected "sqlite:///path/to/state.db" or "postgresql://user@host:port/db",'
            f" got {masked(url)!r}"
        )
    if scheme == "sqlite":
        if not rest:
            raise ValueError("state: sqlite:// needs a path, as in sqlite:///var/lib/watcher.db")
        return StateTarget("sqlite", rest)
    if _PASSWORD.match(url) or _QUERY_PASSWORD.search(url):
        # a password in the URL would sit in the config file and in every process listing
        raise ValueError(
            "state: the URL holds a password; put it in the variable state_password_env names"
            " (or PGPASSWORD / ~/.pgpass) instead"
        )
    return StateTarget("postgresql", f"postgresql://{rest}")


def password(password_env: str, env: Mapping[str, str] | None = None) -> str | None:
    """The PostgreSQL password from the variable `password_env` names (None: libpq's own
    PGPASSWORD / PGPASSFILE / .pgpass apply)."""
    env = os.environ if env is None else env
    return env.get(password_env) or None if password_env else None
