"""Shared fixtures: the protocol-faithful fakes in tests/fakes/ are plugins every test can use;
a throwaway PostgreSQL server and the store contract's backends."""

from collections.abc import Iterator

import pytest

from tests.postgres import Cluster, running_cluster

pytest_plugins = [
    "tests.fakes.anthropic_api",
    "tests.fakes.github_api",
    "tests.fakes.webhook_receiver",
]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL server for the whole session (started on first use)."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A fresh, empty PostgreSQL database for one test: its URL."""
    return pg_cluster.create()


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[object]:
    """The store contract's backends: `make_store(**options)` opens a store on this test's one
    database (a SQLite file, or a fresh PostgreSQL database), so a second call is a restart.
    Every store opened is closed at the end."""
    from watcher.store import open_store

    if request.param == "sqlite":
        url = f"sqlite://{tmp_path}/state.db"
    else:
        url = request.getfixturevalue("pg_url")
    opened: list[object] = []

    def make(**options: object) -> object:
        store = open_store(url, **options)  # type: ignore[arg-type]
        opened.append(store)
        return store

    make.backend = request.param  # type: ignore[attr-defined]
    make.url = url  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()  # type: ignore[attr-defined]
