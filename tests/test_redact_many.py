"""Redactor.redact_many (one keyword search for a whole batch) gives exactly redact() of each
text, and a store commit through it writes the rows a one-text-at-a-time redactor writes.

redact() itself is the reference: redact_many only decides which texts may skip it, so a text
it wrongly lets through (a keyword it did not see, a text mapped to the wrong offset, a long
text's line-by-line search) shows as a text left with its secret.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.fix.redact import Redacting, Redactor
from watcher.model import ErrorGroup, Sample
from watcher.store import Store

KEY = b"k" * 32
REDACTOR = Redactor(key=KEY)

# secrets and keywords the rules look for, words glued to them, case and Unicode folding
# (U+212A KELVIN SIGN lowers to "k", U+0130 to two code points), separators and newlines
_PIECES = [
    "password=hunter2hunter2",
    "token: 8f3kQz91LmPq0aZx",
    "ghp_" + "a" * 36,
    "AKIAIOSFODNN7EXAMPLE",
    "api_key=sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "Authorization: Bearer abcdef0123456789xyz",
    "jdoe@example.com",
    "xoxb-123456789012-1234567890123-abcdefghijklmnopqrstuvwx",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_value_1234",
    "SECRET",
    "Key",
    "\u212aey=abc123xyz789",
    "\u0130",
    "auth",
    "path",
    "session_id=9f8e7d6c5b4a",
    "q~",
    ":a",
    "t3blbkfj",
    "@",
    "-----BEGIN",
    "monkey",
    "the",
    "error",
    "failed",
    "ref=f5cae3bf",
    " ",
    " ",
    "\n",
    "=",
    ":",
    '"',
    "<secret:",
]
texts = st.lists(st.sampled_from(_PIECES) | st.text(max_size=12), max_size=14).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(texts, max_size=12))
def test_redact_many_is_redact_of_each(batch: list[str]) -> None:
    assert REDACTOR.redact_many(batch) == [REDACTOR.redact(t) for t in batch]


def test_redact_many_on_log_lines() -> None:
    lines = [
        "2026-12-07T19:57:13.964Z ERROR [auth] login failed password=hunter2hunter2 user=x",
        "2026-12-07T19:57:13.964Z ERROR [worker] tivubove safaloze ref=f5cae3bf seq=1 src=gen",
        "2026-12-07T19:57:13.964Z ERROR [billing] path /var/tmp not found",
        "ERROR token=ghp_" + "b" * 36,
        "ERROR user jdoe@example.com rejected",
        "x" * 5000 + "\nsecret: " + "Zq8" * 8 + "\n" + "y" * 10,  # a long text: line by line
        "",
    ]
    batch = lines * 3
    expected = [REDACTOR.redact(t) for t in batch]
    assert REDACTOR.redact_many(batch) == expected
    assert expected[0] != batch[0] and expected[1] == batch[1]  # the test means something


def _dump(path: Path) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [
            *conn.execute("SELECT * FROM groups ORDER BY id"),
            *conn.execute(
                "SELECT group_id, timestamp, source, text, line FROM samples ORDER BY id"
            ),
        ]
    finally:
        conn.close()


def test_commit_through_many_writes_the_same_rows(tmp_path: Path) -> None:
    """A store whose redact has `many` (the daemon's) and one with a plain function."""
    groups, samples = [], {}
    for i, text in enumerate(["password=hunter2hunter2 at login", "plain failure", "auth ok"]):
        group = ErrorGroup(
            id=f"g{i}", kind="template", template=f"<*> {text}", category="auth_error",
            severity="high", fixable=False, suggested_fix="", exception_type=None,
            top_frame=None, frames=[], count=1, first_seen=1.0, last_seen=2.0,
            sources={"api": 1}, tags={"user": {"jdoe@example.com": 1, "anon": 2}},
        )  # fmt: skip
        groups.append(group)
        samples[group.id] = [Sample(1.0, "api", f"line {text}", 3), Sample(2.0, "api", text, 4)]
    rows = []
    for name, redact in (("plain", REDACTOR.redact), ("many", Redacting(lambda: REDACTOR))):
        with Store(tmp_path / f"{name}.db", redact=redact) as store:
            store.commit(groups, samples)
        rows.append(_dump(tmp_path / f"{name}.db"))
    assert rows[0] == rows[1]
    assert "hunter2" not in repr(rows[1]) and "jdoe@" not in repr(rows[1])
