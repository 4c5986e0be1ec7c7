"""Signal floor: watcher's event boundaries, groups and categories on the project's own corpus.

The corpus (`bench/data/signal/`) holds real traces from really running the crashing programs
in bench/corpus/, written by bench/signal_corpus.py in every log format the product claims,
among ordinary traffic and distractors; its truth is the generator's bookkeeping. This test
replays it through the CLI (`watcher replay --emit events`, which bench/error_signal.py scores)
and holds the overall figures at or above the floors below.

The floors are what watcher scores on this corpus minus a small margin (issue 11: before the
parser rework boundary F1 0.528, GA 0.023, pairwise F1 0.343, category accuracy 0.619; after it
0.991, 0.974, 0.997, 0.909). They only ever go up: whoever improves the parser raises them to
the new figures minus ~0.02 (`python bench/error_signal.py` prints them). Issue 11's target is
boundary F1 >= 0.97, GA >= 0.95, category accuracy >= 0.90.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
DATA = BENCH / "data" / "signal"
sys.path.append(str(BENCH))
import event_score  # noqa: E402
import signal_corpus  # noqa: E402

FLOOR_BOUNDARY_F1 = 0.99
FLOOR_GA = 0.96
FLOOR_PAIRWISE_F1 = 0.99
FLOOR_CATEGORY_ACCURACY = 0.95


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Overall metrics of one replay of the committed stream."""
    out = tmp_path_factory.mktemp("signal") / "events.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "watcher",
        "replay",
        str(DATA / "stream.log"),
        "--emit",
        "events",
        "--no-progress",
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), proc.stderr
    truth = event_score.load_jsonl(DATA / "truth.jsonl")
    return event_score.metrics(event_score.evaluate(truth, event_score.load_jsonl(out)))


def test_boundary_f1_floor(scored: dict) -> None:
    """Error events start where the truth says (header or next line) no less often than before."""
    assert scored["boundary_f1"] >= FLOOR_BOUNDARY_F1, event_score.summary_line(scored)


def test_grouping_floor(scored: dict) -> None:
    """Events of one root cause share a group, and only they, no less often than before."""
    assert scored["ga"] >= FLOOR_GA, event_score.summary_line(scored)
    assert scored["pairwise_f1"] >= FLOOR_PAIRWISE_F1, event_score.summary_line(scored)


def test_category_floor(scored: dict) -> None:
    """Matched events get the true category at least as often as before."""
    assert scored["category_accuracy"] >= FLOOR_CATEGORY_ACCURACY, event_score.summary_line(scored)


def test_committed_corpus_is_the_generators_output(tmp_path: Path) -> None:
    """stream.log and truth.jsonl are exactly what signal_corpus.py writes: no hand edits."""
    meta = json.loads((DATA / "meta.json").read_text())
    signal_corpus.main(
        [
            "--seed",
            str(meta["seed"]),
            "--formats-per-trace",
            str(meta["formats_per_trace"]),
            "-o",
            str(tmp_path),
        ]
    )
    for name in ("stream.log", "truth.jsonl", "meta.json"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_truth_spans_cover_the_written_traces() -> None:
    """Every true event spans its whole captured trace, in stream order, one start per line."""
    lines = (DATA / "stream.log").read_text(encoding="utf-8").split("\n")
    traces = {
        (t.group, t.occurrence): t.text for t in signal_corpus.load_traces(DATA / "traces.jsonl")
    }
    truth = event_score.load_jsonl(DATA / "truth.jsonl")
    assert {t["lang"] for t in truth} >= {"python", "node", "java"}
    for t in truth:
        span = "\n".join(lines[t["first_line"] - 1 : t["last_line"]])
        last_trace_line = traces[(t["group"], t["occurrence"])].split("\n")[-1]
        escaped = json.dumps(last_trace_line)[1:-1]  # as JSON formats carry it
        last = lines[t["last_line"] - 1]
        assert last.endswith(last_trace_line) or escaped in last, t
        assert t["kind"] != "json-line" or t["first_line"] == t["last_line"], t
        assert span.count("\n") == t["last_line"] - t["first_line"]
    starts = [t["first_line"] for t in truth]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)


def test_scorer_perfect_and_off_by_one() -> None:
    """The scorer gives 1.0 to the truth itself and accepts a start one line late, but not two."""
    truth = [
        {"first_line": 1, "last_line": 3, "group": "a", "category": "internal_error"},
        {"first_line": 5, "last_line": 5, "group": "a", "category": "internal_error"},
        {"first_line": 8, "last_line": 9, "group": "b", "category": "database_error"},
    ]
    perfect = event_score.metrics(event_score.evaluate(truth, truth))
    assert (
        perfect["boundary_f1"],
        perfect["ga"],
        perfect["category_accuracy"],
        perfect["exact_span"],
    ) == (1, 1, 1, 1)
    late = [dict(t, first_line=t["first_line"] + 1) for t in truth]
    assert event_score.metrics(event_score.evaluate(truth, late))["boundary_f1"] == 1
    too_late = [dict(t, first_line=t["first_line"] + 2) for t in truth]
    assert event_score.metrics(event_score.evaluate(truth, too_late))["matched"] == 0


def test_scorer_merged_groups_and_extra_events() -> None:
    """Merging true groups costs GA and pairwise precision; an extra event, boundary precision."""
    truth = [
        {"first_line": n, "group": g, "category": "internal_error"}
        for n, g in ((1, "a"), (4, "a"), (7, "b"))
    ]
    merged = [dict(t, group="x") for t in truth] + [{"first_line": 10, "group": "y"}]
    m = event_score.metrics(event_score.evaluate(truth, merged))
    assert (
        m["ga"] == 0
        and m["pairwise_precision"] == pytest.approx(1 / 3)
        and m["pairwise_recall"] == 1
    )
    assert m["boundary_precision"] == pytest.approx(3 / 4) and m["boundary_recall"] == 1


def test_slices_charge_unmatched_events_to_their_format() -> None:
    """Per-format figures charge a stray prediction to the event it sits in or before."""
    truth = [
        {"first_line": 2, "last_line": 4, "group": "a", "format": "plain"},
        {"first_line": 8, "last_line": 9, "group": "b", "format": "railway"},
    ]
    pred = [
        {"first_line": 2, "group": "a"},
        {"first_line": 3, "group": "a2"},
        {"first_line": 6, "group": "c"},
        {"first_line": 8, "group": "b"},
    ]
    by = event_score.score_slices(event_score.evaluate(truth, pred), "format")
    assert by["plain"]["pred_events"] == 2 and by["plain"]["boundary_precision"] == 0.5
    assert by["railway"]["pred_events"] == 2 and by["railway"]["boundary_recall"] == 1
