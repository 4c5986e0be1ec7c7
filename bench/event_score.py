"""Score reported error events against a truth file: boundaries, grouping, categories, spans.

Truth and predictions are JSON objects with `first_line` (1-based) and optional `last_line`,
`group` and `category`, the shape of `watcher replay --emit events` and of the corpora's
`truth.jsonl`. The metrics are the usual ones for this task:

* boundaries: a prediction matches a true event when its first_line is the true first_line or
  the line after it (the header vs. the `Traceback` line); one-to-one, exact starts paired
  first. precision = matched / predicted, recall = matched / true, F1.
* grouping over matched events: pairwise precision / recall / F1 over pairs of events, and GA
  (Loghub grouping accuracy): an event is right when the matched events sharing its predicted
  group are exactly those sharing its true group. `ga` divides by matched, `ga_all` by all true.
* category accuracy over matched events (a missing category is wrong); exact span: share of
  matched events whose last_line is right, among predictions that carry one.

`score_slices` breaks the same figures down by a truth field (lang, format): matching and
group correctness are computed once over the whole stream, so the slices add up to the total.
An unmatched prediction is charged to the slice of the true event whose span holds it, else of
the next true event (the traffic before an event is written in that event's format). A slice's
GA uses the stream-wide verdict (one error through two shippers must be one group); its pairwise
F1 counts only pairs inside the slice. Stdlib only.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Event = dict[str, Any]
SINGLETON = "\x00singleton"


def load_jsonl(path: str | Path) -> list[Event]:
    """Objects of a JSONL file; lines not JSON or without an integer first_line are skipped."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (
            isinstance(row, dict)
            and isinstance(row.get("first_line"), int)
            and not isinstance(row["first_line"], bool)
        ):
            rows.append(row)
    return rows


def match(truth: list[Event], pred: list[Event]) -> dict[int, int]:
    """{prediction index: truth index}: exact starts first, then starts one line later."""
    by_first = {t["first_line"]: i for i, t in enumerate(truth)}
    order = sorted(range(len(pred)), key=lambda i: (pred[i]["first_line"], i))
    pairs: dict[int, int] = {}
    used: set[int] = set()
    for offset in (0, 1):
        for pi in order:
            ti = by_first.get(pred[pi]["first_line"] - offset)
            if pi not in pairs and ti is not None and ti not in used:
                used.add(ti)
                pairs[pi] = ti
    return pairs


def prf(tp: int, n_pred: int, n_true: int, empty: float = 1.0) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else empty
    r = tp / n_true if n_true else empty
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _pairs(counts: Iterable[int]) -> int:
    return sum(c * (c - 1) // 2 for c in counts)


def pred_label(event: Event, index: int) -> str:
    group = event.get("group")
    return f"{SINGLETON}{index}" if group is None else json.dumps(group, sort_keys=True)


@dataclass
class Scored:
    """The matching and the per-true-event verdicts every figure is computed from."""

    truth: list[Event]
    pred: list[Event]
    pairs: dict[int, int]  # prediction -> truth
    group_ok: dict[int, bool]  # truth index (matched) -> GA-correct
    true_labels: dict[int, str]
    pred_labels: dict[int, str]

    @property
    def matched(self) -> dict[int, int]:
        return {ti: pi for pi, ti in self.pairs.items()}


def evaluate(truth: list[Event], pred: list[Event]) -> Scored:
    pairs = match(truth, pred)
    true_labels = {ti: str(truth[ti]["group"]) for ti in pairs.values()}
    pred_labels = {ti: pred_label(pred[pi], pi) for pi, ti in pairs.items()}
    cells = Counter((true_labels[ti], pred_labels[ti]) for ti in true_labels)
    size_t, size_p = Counter(true_labels.values()), Counter(pred_labels.values())
    group_ok = {
        ti: cells[(g, pred_labels[ti])] == size_t[g] == size_p[pred_labels[ti]]
        for ti, g in true_labels.items()
    }
    return Scored(truth, pred, pairs, group_ok, true_labels, pred_labels)


def metrics(
    s: Scored, truth_ids: list[int] | None = None, pred_ids: list[int] | None = None
) -> dict[str, Any]:
    """The figures for all events, or for the given true events and predictions (a slice)."""
    tids = list(range(len(s.truth))) if truth_ids is None else truth_ids
    pids = list(range(len(s.pred))) if pred_ids is None else pred_ids
    inv = s.matched
    hit = [ti for ti in tids if ti in inv]
    bp, br, bf = prf(len(hit), len(pids), len(tids), empty=0.0)
    cat_ok = sum(1 for ti in hit if s.pred[inv[ti]].get("category") == s.truth[ti].get("category"))
    spans = [ti for ti in hit if isinstance(s.pred[inv[ti]].get("last_line"), int)]
    span_ok = sum(1 for ti in spans if s.pred[inv[ti]]["last_line"] == s.truth[ti].get("last_line"))
    ga_ok = sum(1 for ti in hit if s.group_ok[ti])
    out = {
        "truth_events": len(tids),
        "pred_events": len(pids),
        "matched": len(hit),
        "matched_exact": sum(
            1 for ti in hit if s.pred[inv[ti]]["first_line"] == s.truth[ti]["first_line"]
        ),
        "boundary_precision": bp,
        "boundary_recall": br,
        "boundary_f1": bf,
        "ga": ga_ok / len(hit) if hit else 0.0,
        "ga_all": ga_ok / len(tids) if tids else 0.0,
        "category_accuracy": cat_ok / len(hit) if hit else 0.0,
        "exact_span": span_ok / len(spans) if spans else None,
        "true_groups": len({s.truth[ti]["group"] for ti in tids}),
    }
    out.update(pairwise(s, hit))
    return out


def pairwise(s: Scored, hit: list[int]) -> dict[str, float]:
    """Pairwise precision / recall / F1 over pairs of the given matched true events."""
    cells = Counter((s.true_labels[ti], s.pred_labels[ti]) for ti in hit)
    tp = _pairs(cells.values())
    n_pred = _pairs(Counter(s.pred_labels[ti] for ti in hit).values())
    n_true = _pairs(Counter(s.true_labels[ti] for ti in hit).values())
    p, r, f = prf(tp, n_pred, n_true) if hit else (0.0, 0.0, 0.0)
    return {
        "pairwise_precision": p,
        "pairwise_recall": r,
        "pairwise_f1": f,
        "pred_groups": len({s.pred_labels[ti] for ti in hit}),
    }


def owner_of_line(truth: list[Event], line: int) -> int | None:
    """The true event whose span holds `line`, else the next one after it, else the last one."""
    best = None
    for i, t in enumerate(truth):
        if t["first_line"] <= line <= t.get("last_line", t["first_line"]):
            return i
        if t["first_line"] > line and (best is None or t["first_line"] < truth[best]["first_line"]):
            best = i
    return best if best is not None else (len(truth) - 1 if truth else None)


def score_slices(s: Scored, key: str) -> dict[str, dict[str, Any]]:
    """Metrics per value of truth field `key` (e.g. lang, format)."""
    truth_ids: dict[str, list[int]] = defaultdict(list)
    for ti, t in enumerate(s.truth):
        truth_ids[str(t.get(key, "?"))].append(ti)
    pred_ids: dict[str, list[int]] = defaultdict(list)
    for pi, p in enumerate(s.pred):
        ti = s.pairs.get(pi)
        if ti is None:
            ti = owner_of_line(s.truth, p["first_line"])
        if ti is not None:
            pred_ids[str(s.truth[ti].get(key, "?"))].append(pi)
    return {k: metrics(s, ids, pred_ids.get(k, [])) for k, ids in sorted(truth_ids.items())}


def summary_line(m: dict[str, Any]) -> str:
    return (
        f"SUMMARY boundary_f1={m['boundary_f1']:.4f} pairwise_f1={m['pairwise_f1']:.4f} "
        f"ga={m['ga']:.4f} "
        f"ga_all={m['ga_all']:.4f} category_acc={m['category_accuracy']:.4f} "
        f"matched={m['matched']}/{m['truth_events']} pred={m['pred_events']}"
    )
