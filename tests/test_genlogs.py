"""The example-log generator: deterministic, realistic enough, and honest about what it made."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .helpers import load_genlogs

ROOT = Path(__file__).resolve().parent.parent


genlogs = load_genlogs()


@pytest.fixture(scope="module")
def big_run() -> list:
    """A 20k-line run, shared: generating it is the slow part of these tests."""
    return list(genlogs.generate_records(20_000, 11, 0.05))


def _text(records: list) -> str:
    return "\n".join(line for record in records for line in record.lines)


def test_same_seed_same_output() -> None:
    """Two runs with one seed produce byte-identical logs."""
    assert list(genlogs.generate(3000, 42, 0.05)) == list(genlogs.generate(3000, 42, 0.05))


def test_different_seed_different_output() -> None:
    """The seed changes the log."""
    assert list(genlogs.generate(500, 1, 0.05)) != list(genlogs.generate(500, 2, 0.05))


@pytest.mark.parametrize("n_lines", [1, 37, 2500])
def test_exact_line_count(n_lines: int) -> None:
    """The generator yields exactly the requested number of physical lines, none containing \\n."""
    lines = list(genlogs.generate(n_lines, 3, 0.3))
    assert len(lines) == n_lines
    assert not any("\n" in line for line in lines)


def test_error_share_near_rate(big_run: list) -> None:
    """About error_rate of the events are error events."""
    errors = sum(record.pattern is not None for record in big_run)
    assert abs(errors / len(big_run) - 0.05) < 0.01


def test_error_share_follows_a_higher_rate() -> None:
    """The error share tracks error_rate, not a constant."""
    records = list(genlogs.generate_records(10_000, 5, 0.2))
    errors = sum(record.pattern is not None for record in records)
    assert abs(errors / len(records) - 0.2) < 0.03


def test_every_pattern_appears(big_run: list) -> None:
    """Each of the ~25 patterns occurs at least once in a 20k-line run."""
    seen = {record.pattern for record in big_run if record.pattern}
    assert seen == set(genlogs.PATTERNS_BY_NAME)
    assert len(genlogs.PATTERNS) >= 25


def test_patterns_cover_every_category() -> None:
    """The patterns span all nine built-in categories of the design."""
    from watcher.model import CATEGORIES

    assert {p.category for p in genlogs.PATTERNS} == set(CATEGORIES)


@pytest.mark.parametrize(
    "marker",
    [
        "Traceback (most recent call last):",
        "During handling of the above exception, another exception occurred:",
        "The above exception was the direct cause of the following exception:",
        "\nCaused by: ",
        "\n\t... 12 more",
        "\n\tat com.acme.",
        "\nTypeError: Cannot read properties of undefined (reading 'id')\n    at ",
        "\npanic: runtime error: invalid memory address or nil pointer dereference",
        "[running]:\ngithub.com/acme/",
        "\t/usr/local/go/src/",
        ":in `perform'",
        "(NoMethodError)\n\tfrom /app/app/",
    ],
)
def test_multiline_traces_for_each_language(big_run: list, marker: str) -> None:
    """Python, Java, Node, Go and Ruby traces appear in their real shapes."""
    assert marker in _text(big_run)


def test_trace_languages_present(big_run: list) -> None:
    """Every language has at least one error record that carries a trace."""
    languages = {r.language for r in big_run if r.pattern and r.trace}
    assert {"python", "java", "node", "go", "ruby"} <= languages


def test_json_lines_carry_traces(big_run: list) -> None:
    """structlog's exception field and pino/bunyan's err.stack hold multi-line traces."""
    structlog_exc, node_stack = False, False
    for record in big_run:
        if record.trace != "json":
            continue
        payload = json.loads(record.lines[0])
        structlog_exc |= "Traceback (most recent call last):" in payload.get("exception", "")
        node_stack |= "\n    at " in payload.get("err", {}).get("stack", "")
    assert structlog_exc and node_stack


def test_multiline_records_continue_with_untimestamped_lines(big_run: list) -> None:
    """Continuation lines of a trace do not start with a timestamp of their own."""
    stamp = re.compile(r"^\d{4}[-/]\d{2}[-/]\d{2}[ T]")
    for record in big_run:
        if record.trace == "multiline":
            assert not any(stamp.match(line) for line in record.lines[1:])


def test_timestamps_ordered_within_the_day(big_run: list) -> None:
    """Timestamps never go backwards and stay inside the fixed day."""
    stamps = [record.timestamp_ms for record in big_run]
    assert stamps == sorted(stamps)
    assert stamps[0] >= genlogs.DAY_START_MS and stamps[-1] <= genlogs.DAY_END_MS


def test_decoys_are_not_errors(big_run: list) -> None:
    """Lines that say 'error' in a harmless way exist and are not tagged as error events."""
    decoys = ("error=none", "errors_total=0", "no validation errors", "error_handler")
    for decoy in decoys:
        hits = [r for r in big_run if any(decoy in line for line in r.lines)]
        assert hits and all(r.pattern is None for r in hits), decoy


def test_only_deliberately_fake_secrets(big_run: list) -> None:
    """Every API-key-shaped token is one of the declared fake ones."""
    tokens = set(re.findall(r"sk-[A-Za-z0-9-]+", _text(big_run)))
    assert tokens and tokens <= set(genlogs.FAKE_TOKENS)


def test_summary_counts_match_records() -> None:
    """summarize() counts exactly what generate_records() yields."""
    summary = genlogs.summarize(2000, 7, 0.05)
    records = list(genlogs.generate_records(2000, 7, 0.05))
    assert summary.lines == 2000
    assert summary.events == len(records)
    assert summary.error_events == sum(summary.by_pattern.values())


def test_committed_example_matches_generator() -> None:
    """examples/app.log is exactly the documented command's output, so its README stays true."""
    path = ROOT / "examples" / "app.log"
    expected = "".join(line + "\n" for line in genlogs.generate(4000, 7, 0.05))
    assert path.read_text(encoding="utf-8") == expected


def test_cli_writes_file(tmp_path: Path) -> None:
    """The command line writes the same lines as the generator."""
    out = tmp_path / "x.log"
    assert genlogs.main(["--lines", "300", "--seed", "9", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").splitlines() == list(genlogs.generate(300, 9, 0.05))


def test_example_readme_table_is_current() -> None:
    """examples/README.md carries the generator's own count table, not a stale or guessed one."""
    readme = (ROOT / "examples" / "README.md").read_text(encoding="utf-8")
    assert genlogs.summary_markdown(genlogs.summarize(4000, 7, 0.05)) in readme
