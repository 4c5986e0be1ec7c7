"""The template miner: grouping, stable ids, bounded memory, and the `templates` stream."""

from __future__ import annotations

import io
import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher.group.split import MergeIndex, mergeable
from watcher.group.template import Cluster, TemplateMiner, run_stream


def test_one_statement_shares_a_cluster() -> None:
    """Lines of one statement with different values land in one cluster."""
    miner = TemplateMiner()
    a = miner.add("Connection to 10.0.0.1:5432 timed out after 30s")
    b = miner.add("Connection to 10.0.0.7:5432 timed out after 12s")
    assert a is b
    assert a.size == 2
    assert a.template == "Connection to <*> timed out after <*>"


def test_word_variables_generalise() -> None:
    """A word that varies where the rest agrees becomes a wildcard in the template."""
    miner = TemplateMiner()
    for user in ("alice", "bob", "carol", "dave", "erin"):
        cluster = miner.add(f"Invalid user {user} from host gw1 on port 22")
    assert cluster.template == "Invalid user <*> from host <*> on port <*>"
    assert len(miner) == 1


def test_different_statements_differ() -> None:
    """Lines of different statements get different clusters."""
    miner = TemplateMiner()
    a = miner.add("Payment provider returned 502 for order 17")
    b = miner.add("Cache miss for key 17 in region eu")
    assert a.id != b.id
    assert len(miner) == 2


def test_ids_are_deterministic() -> None:
    """Two miners give the same statement the same id."""
    assert (
        TemplateMiner().add("disk full on /dev/sda1").id
        == TemplateMiner().add("disk full on /dev/sda1").id
    )


def test_id_survives_generalisation() -> None:
    """A cluster keeps its id when its template gains wildcards."""
    miner = TemplateMiner()
    first = miner.add("worker alpha stopped cleanly now")
    cid = first.id
    assert miner.add("worker beta stopped cleanly now") is first
    assert first.id == cid
    assert "<*>" in first.template


def test_match_does_not_learn() -> None:
    """match finds known statements and returns None for new ones without adding clusters."""
    miner = TemplateMiner()
    cluster = miner.add("queue depth 5 exceeds limit 3")
    assert miner.match("queue depth 9 exceeds limit 4") is cluster
    assert miner.match("something else entirely") is None
    assert len(miner) == 1
    assert cluster.size == 1


def test_snapshot_restore_keeps_ids() -> None:
    """A restored miner maps the same statements to the same ids."""
    miner = TemplateMiner()
    ids = [miner.add(f"job {n} failed: quota exceeded").id for n in range(3)]
    state = json.loads(json.dumps(miner.snapshot()))
    assert all(entry["v"] == 1 for entry in state)
    fresh = TemplateMiner()
    fresh.restore(state)
    assert len(fresh) == 1
    assert fresh.add("job 99 failed: quota exceeded").id == ids[0]
    assert fresh.resolve(ids[0]) is not None


def test_restore_skips_unknown_versions() -> None:
    """Snapshot entries of a future version are ignored, not fatal."""
    miner = TemplateMiner()
    miner.restore([{"v": 99, "id": "x", "template": "t", "size": 1}])
    assert len(miner) == 0


def test_eviction_bounds_clusters_and_reports() -> None:
    """With a cap, the least recently matched cluster is evicted and reported."""
    evicted: list[Cluster] = []
    miner = TemplateMiner(max_clusters=3, on_evict=evicted.append)
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    first = miner.add("alpha zulu yankee")
    for word in words[1:]:
        miner.add(f"{word} {word} {word} {word}")
        assert len(miner) <= 3
    assert evicted[0] is first
    assert miner.resolve(first.id) is None
    again = miner.add("alpha zulu yankee")
    assert again.id == first.id  # the id is derived from the text, so it comes back the same


def test_consolidate_splits_enum_positions() -> None:
    """A position with only a few values each repeated is a statement word, not a variable."""
    miner = TemplateMiner()
    members = [
        miner.add_member(f"[vm {n}] VM {state} (Lifecycle Event)")
        for n in range(30)
        for state in ("Started", "Paused")
    ]
    miner.consolidate()
    started = {m.cluster.id for m in members if "Started" in m.tokens}
    paused = {m.cluster.id for m in members if "Paused" in m.tokens}
    assert len(started) == 1
    assert len(paused) == 1
    assert started != paused


def test_merge_is_resolved() -> None:
    """After a merge, the absorbed id resolves to the surviving cluster."""
    miner = TemplateMiner()
    a = miner.add("alpha one two three four")
    b = miner.add("alpha one two three <*>")  # a message that shows a wildcard literally
    miner.consolidate()
    assert miner.resolve(a.id) is miner.resolve(b.id)
    assert len(miner) == 1


def _run(data: bytes) -> list[bytes]:
    out = io.BytesIO()
    assert run_stream(io.BytesIO(data), out) == 0
    return out.getvalue().split(b"\n")[:-1]


def test_run_stream_one_line_per_input_line() -> None:
    """Every input line, empty, invalid UTF-8 or holding a CR, yields one output line."""
    data = b"error 1 in x\n\nerror 2 in x\n\xff\xfe bad bytes\ncarriage\rreturn inside\nlast"
    lines = _run(data)
    assert len(lines) == 6
    ids = [line.split(b"\t", 1)[0] for line in lines]
    assert ids[0] == ids[2]
    assert all(ids)
    assert all(b"\t" in line for line in lines)


def test_run_stream_empty_input() -> None:
    """No input gives no output and exit code 0."""
    assert _run(b"") == []


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=80), max_size=20))
def test_any_text_gets_a_cluster(messages: list[str]) -> None:
    """Random text never raises and always yields one cluster per message."""
    miner = TemplateMiner(max_clusters=5)
    for message in messages:
        cluster = miner.add(message)
        assert isinstance(cluster, Cluster)
        assert miner.resolve(cluster.id) is cluster
    miner.consolidate()
    assert len(miner) <= 5


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=60).filter(lambda b: b"\n" not in b), max_size=15))
def test_any_bytes_stream_one_line_each(lines: list[bytes]) -> None:
    """Random bytes never raise and give exactly one output line per input line."""
    data = b"".join(line + b"\n" for line in lines)
    assert len(_run(data)) == len(lines)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=9).flatmap(
        lambda width: st.lists(
            st.lists(st.sampled_from(["a", "b", "c", "<*>"]), min_size=width, max_size=width)
        )
    )
)
def test_merge_index_finds_the_first_mergeable(templates: list[list[str]]) -> None:
    """MergeIndex.find returns what a scan of all kept clusters in order would."""
    width = len(templates[0]) if templates else 0
    # whichever positions the sample makes it index
    index, kept = MergeIndex(width, templates[::2]), []
    for n, tokens in enumerate(templates):
        expected = next((k for k in kept if mergeable(k.tokens, tokens)), None)
        assert index.find(tokens) is expected
        if expected is None:
            cluster = Cluster(id=str(n), template=" ".join(tokens), tokens=tokens)
            index.add(cluster)
            kept.append(cluster)


def test_merge_index_looks_up_the_selective_positions() -> None:
    """A flood of unique messages of one service finds no candidates under the service name."""
    templates = [["[api]", f"w{n}", f"v{n}", "<*>"] for n in range(500)]
    index = MergeIndex(4, templates)
    assert index._positions == [1, 2, 3]  # a wildcard is in no posting; "[api]" is in all
    for n, tokens in enumerate(templates):
        assert list(index._candidates(tokens)) == []
        index.add(Cluster(id=str(n), template="", tokens=tokens))


def test_merge_index_in_a_flood_of_look_alikes_prefers_the_closest() -> None:
    """Past MAX_MERGE_CANDIDATES look-alikes, those sharing the most indexed words are tried."""
    index = MergeIndex(6)
    for n in range(200):  # all share "job" with the query, none can take it ("x<n>" conflicts)
        index.add(Cluster(id=str(n), template="", tokens=["job", f"x{n}", "a", "b", "c", "d"]))
    target = Cluster(id="t", template="", tokens=["job", "<*>", "failed", "on", "c", "d"])
    index.add(target)
    assert index.find(["job", "42", "failed", "on", "c", "d"]) is target


def _word(n: int) -> str:
    return "".join(chr(97 + n // 26**k % 26) for k in range(4))


def test_consolidate_is_cheap_with_many_clusters() -> None:
    """consolidate() on thousands of distinct statements keeps them apart, and fast."""
    miner = TemplateMiner()
    for n in range(3000):
        miner.add(" ".join(_word(7 * n + i) for i in range(6)))
    assert len(miner) == 3000
    started = time.perf_counter()
    assert miner.consolidate() == 0
    assert time.perf_counter() - started < 2.0  # all pairs took ~1.4 s at 3,000 clusters
