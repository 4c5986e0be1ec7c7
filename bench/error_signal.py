#!/usr/bin/env python3
"""How well watcher finds, cuts, groups and classifies error events: per language, per format.

Runs `watcher replay STREAM --emit events` on a corpus and scores the events against its truth
(`bench/event_score.py`: boundary F1, GA, pairwise F1, category accuracy, exact span), then
prints one table per truth field (lang, format) and the overall line. The default corpus is the
project's own (`bench/data/signal/`: real traces from bench/corpus/, written by
bench/signal_corpus.py); `--truth/--stream` score any corpus of the same shape.

    .venv/bin/python bench/error_signal.py
    .venv/bin/python bench/error_signal.py --json /tmp/signal.json
    .venv/bin/python bench/error_signal.py --stream ../shared/data/realworld-dev/stream.log \
        --truth ../shared/data/realworld-dev/truth.jsonl --by lang kind
    .venv/bin/python bench/error_signal.py --pred pred.jsonl       # score saved events, run nothing

Stdlib only; the watcher under test is `python -m watcher` of the interpreter running this.
"""

# ruff: noqa: E402 -- bench/ must leave the front of sys.path before the stdlib imports

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0]: it goes to the end, so that no bench module
# can shadow a stdlib one; keep bench/ on the path, but last.
_BENCH = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _BENCH:
    sys.path.pop(0)
sys.path.append(_BENCH)

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from event_score import evaluate, load_jsonl, metrics, score_slices, summary_line

DATA = Path(__file__).resolve().parent / "data" / "signal"
COLUMNS = (
    ("events", "truth_events", "{}"),
    ("pred", "pred_events", "{}"),
    ("bF1", "boundary_f1", "{:.3f}"),
    ("P", "boundary_precision", "{:.3f}"),
    ("R", "boundary_recall", "{:.3f}"),
    ("GA", "ga", "{:.3f}"),
    ("pwF1", "pairwise_f1", "{:.3f}"),
    ("cat", "category_accuracy", "{:.3f}"),
    ("span", "exact_span", "{:.3f}"),
)


def replay(stream: Path, out: Path) -> float:
    """Run watcher on the stream, events to `out`; returns seconds taken."""
    started = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "watcher",
        "replay",
        str(stream),
        "--emit",
        "events",
        "--no-progress",
        "-o",
        str(out),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if not out.exists():
        sys.exit(
            f"signal: watcher replay failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
        )
    return time.perf_counter() - started


def table(title: str, rows: dict[str, dict[str, Any]]) -> str:
    head = [title] + [c[0] for c in COLUMNS]
    body = [
        [name] + [("-" if m[key] is None else fmt.format(m[key])) for _, key, fmt in COLUMNS]
        for name, m in rows.items()
    ]
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs)

    return "\n".join([line(head), "-" * (sum(widths) + 2 * len(widths) - 2), *map(line, body)])


def report(truth: list[dict], pred: list[dict], by: list[str]) -> dict[str, Any]:
    scored = evaluate(truth, pred)
    result: dict[str, Any] = {"overall": metrics(scored)}
    for key in by:
        if any(key in t for t in truth):
            result[f"by_{key}"] = score_slices(scored, key)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--stream", type=Path, default=DATA / "stream.log", help="log stream to replay")
    ap.add_argument(
        "--truth", type=Path, default=DATA / "truth.jsonl", help="truth JSONL of that stream"
    )
    ap.add_argument("--pred", type=Path, help="score these saved events instead of running watcher")
    ap.add_argument(
        "--by", nargs="*", default=["lang", "format"], help="truth fields to break down by"
    )
    ap.add_argument("--json", type=Path, help="also write every figure as JSON to this file")
    args = ap.parse_args(argv)

    truth = load_jsonl(args.truth)
    seconds = None
    with tempfile.TemporaryDirectory() as tmp:
        pred_path = args.pred or Path(tmp) / "events.jsonl"
        if args.pred is None:
            seconds = replay(args.stream, pred_path)
        pred = load_jsonl(pred_path)
    result = report(truth, pred, args.by)
    result["corpus"] = {
        "truth": str(args.truth),
        "stream": None if args.pred else str(args.stream),
        "events": len(truth),
        "groups": len({t["group"] for t in truth}),
        "replay_seconds": seconds,
    }
    print(
        f"corpus: {args.truth} ({len(truth)} events, {result['corpus']['groups']} groups)"
        + (f"; watcher replay took {seconds:.2f}s" if seconds is not None else "")
    )
    for key in args.by:
        if f"by_{key}" in result:
            print()
            print(table(key, result[f"by_{key}"]))
    print()
    print(table("overall", {"all": result["overall"]}))
    print(summary_line(result["overall"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
