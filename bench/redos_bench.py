"""ReDoS: how long regexes take on adversarial lines — user rules (RE2) and every built-in one.

    .venv/bin/python bench/redos_bench.py            # ~1-2 minutes on 2 cores
    .venv/bin/python bench/redos_bench.py --size 100000 --top 25

1. User rules: classic catastrophic patterns, compiled the way watcher compiles
   `[[classify.rules]]` (RE2, `watcher.classify.compile_rule`), against a `--size` adversarial
   line; and the same patterns under Python's `re` on tiny inputs, to show what RE2 avoids.
2. Built-in regexes: every module-level pattern of the per-line path (parse, classify, mask,
   group) plus the redactor's rules, searched over long runs of the characters (and words) each
   pattern loops on. Each pattern is timed at two sizes; the growth between them tells linear
   (x4 for x4 input) from super-linear (x16). The worst time at `--size` is printed per pattern.
3. The public functions on a line at the 64 KiB line cap: parse_line, mask, classify, the
   template miner, the redactor.
4. Whole records (a header line and its trace lines, each at the cap) through the pipeline.

Times are CPU seconds (time.process_time), so other jobs on the machine do not inflate them.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import itertools
import re
import time
from collections.abc import Callable, Iterator

from watcher.classify import BUILTIN, Rule, classify, compile_rule
from watcher.fix.redact import Redactor
from watcher.group.mask import mask
from watcher.group.table import GroupTable
from watcher.group.template import TemplateMiner
from watcher.model import RawLine
from watcher.parse.formats import parse_line
from watcher.pipeline import Pipeline

HOT_MODULES = (
    "watcher.parse.formats",
    "watcher.parse.levels",
    "watcher.parse.timestamps",
    "watcher.parse.multiline",
    "watcher.parse.traces",
    "watcher.parse.prefixes",
    "watcher.parse.languages.python",
    "watcher.parse.languages.jvm",
    "watcher.parse.languages.node",
    "watcher.parse.languages.go",
    "watcher.parse.languages.ruby",
    "watcher.parse.languages.dotnet",
    "watcher.parse.languages.php",
    "watcher.group.mask",
    "watcher.group.table",
    "watcher.sources.lambda_lines",
    "watcher.fix.redact",
)
# catastrophic patterns for a backtracking engine, and the subject unit that triggers each
EVIL_RULES = (
    (r"(a+)+$", "a", "!"),
    (r"(x|x)*y", "x", ""),
    (r"(a|aa)+$", "a", "!"),
    (r"(\w+\s?)+$", "a", "!"),
    (r"^(([a-z])+.)+[A-Z]([a-z])+$", "a", "!"),
    (r"(.*a){20}", "a", ""),
    (r"(?i)(stripe|.*stripe.*)+timeout", "stripe", ""),
)
# characters patterns loop on: word, digit, space, separators, quotes, brackets, escapes
ALPHABET = "aA0 \t.-_/\\:=\"'<[({@+xf,%~\né"
PAIR_ALPHABET = 'a0 .-/:="<\\@+x'
SMALL, LARGE = 2_000, 8_000
LINE_CAP = 64 * 1024  # [parse] max_line_bytes: no longer line reaches the parser


def cpu(fn: Callable[..., object], *args: object) -> float:
    """CPU seconds one call of fn(*args) takes."""
    start = time.process_time()
    fn(*args)
    return time.process_time() - start


def repeat_to(unit: str, size: int) -> str:
    """`unit` repeated to exactly `size` characters."""
    return (unit * (size // max(len(unit), 1) + 1))[:size]


# --- 1. user rules ---------------------------------------------------------------------------


def user_rules(size: int) -> None:
    """RE2 on `size`-character adversarial subjects vs Python re on a few dozen characters."""
    print(f"## User rules (RE2 via compile_rule), adversarial subject of {size:,} characters\n")
    print("| rule | subject | RE2 | Python re, 20 chars | Python re, 24 chars |")
    print("|---|---|---|---|---|")
    for pattern, unit, tail in EVIL_RULES:
        rx, py = compile_rule(pattern), re.compile(pattern)
        subject = repeat_to(unit, size) + tail
        worst = max(cpu(rx.search, subject) for _ in range(3))
        small = [cpu(py.search, repeat_to(unit, n) + tail) for n in (20, 24)]
        shown = f"{unit!r} * {size:,}{tail}"
        print(f"| `{pattern}` | `{shown}` | {_ms(worst)} | {_ms(small[0])} | {_ms(small[1])} |")
    print()


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


# --- 2. built-in patterns --------------------------------------------------------------------


def builtin_patterns() -> Iterator[tuple[str, re.Pattern[str], str]]:
    """(name, pattern, method) for every regex on the per-line path and the redactor's rules;
    `method` is how the code calls it: "match"/"fullmatch" try one position, "search" all."""
    for module_name in HOT_MODULES:
        module = importlib.import_module(module_name)
        source = inspect.getsource(module)
        for attr, value in vars(module).items():
            if isinstance(value, re.Pattern):
                name = f"{module_name.removeprefix('watcher.')}.{attr}"
                yield name, value, usage(source, attr)
    for cat in BUILTIN:
        for kind in ("exception", "message"):
            rx = getattr(cat, kind)
            if rx is not None:
                yield f"classify.{cat.name}.{kind}", rx, "search"
    for rule in Redactor().rules:
        yield f"redact.{rule.id}", rule.regex, "search"


def usage(source: str, attr: str) -> str:
    """How `source` calls pattern `attr`, costliest first: search (or findall, sub …), match,
    fullmatch."""
    methods = set(re.findall(rf"\b{re.escape(attr)}\.(\w+)\(", source))
    if methods - {"match", "fullmatch"} or not methods:
        return "search"  # findall, finditer, sub, split scan every position like search
    return "match" if "match" in methods else "fullmatch"


def units_for(pattern: re.Pattern[str]) -> list[str]:
    """Repeating units that may make `pattern` loop: single characters, pairs, and the
    pattern's own words with and without a separator."""
    words = set(re.findall(r"[A-Za-z]{3,}", pattern.pattern)[:12])
    units = list(ALPHABET)
    units += ["".join(p) for p in itertools.product(PAIR_ALPHABET, repeat=2) if p[0] != p[1]]
    for word in words:
        units += [word, word + " ", word + ".", word + "=", word + "-", word + ":"]
    return units


def sweep(size: int, top: int) -> None:
    """Time every built-in pattern on its worst input; flag super-linear growth."""
    rows = []
    for name, pattern, method in builtin_patterns():
        run = getattr(pattern, method)
        worst = max(units_for(pattern), key=lambda unit: cpu(run, repeat_to(unit, SMALL)))
        t_large = max(cpu(run, repeat_to(worst, LARGE)) for _ in range(2))
        t_small = max(cpu(run, repeat_to(worst, SMALL)) for _ in range(3))
        growth = t_large / t_small if t_small > 2e-5 else 1.0
        label = f"{name} ({method})"
        if growth > 8 and t_large > 1e-3:  # super-linear: do not run it at full size
            estimate = t_large * (size / LARGE) ** 2
            rows.append((estimate, label, worst, growth, f"~{_ms(estimate)} (est.)", True))
            continue
        t_full = cpu(run, repeat_to(worst, size))
        rows.append((t_full, label, worst, growth, _ms(t_full), False))
    rows.sort(reverse=True)
    flagged = [r for r in rows if r[5]]
    print(f"## Built-in regexes: {len(rows)} patterns, worst input of {size:,} characters\n")
    print(f"Growth = time({LARGE:,}) / time({SMALL:,}): ~4 is linear, ~16 quadratic.\n")
    print("| pattern | worst repeating unit | growth | search time |")
    print("|---|---|---|---|")
    for _, name, unit, growth, shown, _flag in rows[:top]:
        print(f"| {name} | `{unit!r}` | x{growth:.1f} | {shown} |")
    verdict = ", ".join(r[1] for r in flagged) if flagged else "none"
    print(f"\nSuper-linear: {verdict}\n")


# --- 3. the functions on the per-line path ---------------------------------------------------


def functions(top: int) -> None:
    """parse_line, mask, classify, TemplateMiner.add, Redactor.redact on 64 KiB lines."""
    units = [*ALPHABET, "a-", "a.", "1:", "a1-", "x=", "a@", "0x", "a/", "model ", "ERROR "]
    units += ['{"a":', "[", "Traceback ", "\\u00", "aaaa-bbbb."]
    redactor = Redactor()
    rule = Rule(match=compile_rule(r"(a+)+$"), category="cache_error")
    funcs: dict[str, Callable[[str], object]] = {
        "parse_line": lambda s: parse_line(RawLine(s, line_no=1)),
        "mask": mask,
        "classify (+1 evil user rule)": lambda s: classify(
            parse_line(RawLine("ERROR " + s, line_no=1)), [rule]
        ),
        "TemplateMiner.add": lambda s: TemplateMiner().add(s),
        "Redactor.redact": redactor.redact,
    }
    print(f"## Per-line functions on {LINE_CAP:,}-character lines (the line cap)\n")
    print("| function | worst repeating unit | time |")
    print("|---|---|---|")
    for name, fn in funcs.items():
        times = sorted(((cpu(fn, repeat_to(u, LINE_CAP)), u) for u in units), reverse=True)
        for t, unit in times[:top]:
            print(f"| {name} | `{unit!r}` | {_ms(t)} |")
    print()


# --- 4. whole records: assembler + classify + group ------------------------------------------

RECORDS: dict[str, Callable[[int], list[str]]] = {
    "logfmt error, then a long run": lambda n: ["level=error a=1 " + repeat_to("\u00e9", n)],
    "JVM header of dotted words": lambda n: [
        'Exception in thread "main" x ' + repeat_to("Exception.", n),
        "\tat com.a.B.c(B.java:1)",
    ],
    "error message of a-a-a-": lambda n: ["ERROR " + repeat_to("a-", n)],
    "error message of 'model '": lambda n: ["ERROR " + repeat_to("model ", n)],
    "Python traceback, long path and message": lambda n: [
        "Traceback (most recent call last):",
        '  File "' + repeat_to("a/", n) + '", line 1, in f',
        "ValueError: " + repeat_to("a-1.", n),
    ],
    "Node frame of 'f ('": lambda n: ["Error: x", "    at " + repeat_to("f (", n)],
    "Go goroutine of 'a('": lambda n: ["panic: x", "goroutine 1 [running]:", repeat_to("a(", n)],
    "Ruby header": lambda n: ["app.rb:3:in 'foo': " + repeat_to("a ", n) + " (RuntimeError)"],
}


def through_pipeline(lines: list[str]) -> None:
    """One record through the synchronous pipeline: assemble, classify, group."""
    pipeline = Pipeline(GroupTable())
    pipeline.feed([RawLine(text, "bench", "s", n, n) for n, text in enumerate(lines, 1)])
    pipeline.flush(force=True)


def records() -> None:
    """Records whose lines are each at the 64 KiB cap, timed through the whole pipeline."""
    print(f"## Records of {LINE_CAP:,}-character lines through assemble + classify + group\n")
    print("| record | growth | time |")
    print("|---|---|---|")
    for name, make in RECORDS.items():
        small, large = cpu(through_pipeline, make(4096)), cpu(through_pipeline, make(16384))
        growth = large / small if small > 2e-4 else 1.0
        if growth > 8 and large > 0.05:
            shown = f"~{_ms(large * (LINE_CAP / 16384) ** 2)} (est., super-linear)"
        else:
            shown = _ms(cpu(through_pipeline, make(LINE_CAP)))
        print(f"| {name} | x{growth:.1f} | {shown} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="adversarial input length")
    parser.add_argument("--top", type=int, default=20, help="rows of the built-in table")
    parser.add_argument("--skip-builtins", action="store_true", help="skip the slow sweep")
    args = parser.parse_args()
    user_rules(args.size // 2)
    if not args.skip_builtins:
        sweep(args.size, args.top)
    functions(2)
    records()


if __name__ == "__main__":
    main()
