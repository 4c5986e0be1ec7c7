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
from watcher.group.template import TemplateMiner
from watcher.model import RawLine
from watcher.parse.formats import parse_line

HOT_MODULES = (
    "watcher.parse.formats",
    "watcher.parse.levels",
    "watcher.parse.timestamps",
    "watcher.parse.multiline",
    "watcher.parse.traces",
    "watcher.group.mask",
    "watcher.group.table",
    "watcher.sources.lambda_lines",
    "watcher.fix.redact",
)
EVIL_RULES = (
    r"(a+)+$",
    r"(x|x)*y",
    r"(a|aa)+$",
    r"(\w+\s?)+$",
    r"^(([a-z])+.)+[A-Z]([a-z])+$",
    r"(.*a){20}",
    r"(?i)(stripe|.*stripe.*)+timeout",
)
# characters patterns loop on: word, digit, space, separators, quotes, brackets, escapes
ALPHABET = "aA0 \t.-_/\\:=\"'<[({@+xf,%~\né"
PAIR_ALPHABET = "a0 .-/:=\"<\\@+x"
SMALL, LARGE = 2_000, 8_000
LINE_CAP = 64 * 1024  # [parse] max_line_bytes: no longer line reaches the parser


def cpu(fn: Callable[[], object]) -> float:
    """CPU seconds one call takes."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def repeat_to(unit: str, size: int) -> str:
    """`unit` repeated to exactly `size` characters."""
    return (unit * (size // max(len(unit), 1) + 1))[:size]


# --- 1. user rules ---------------------------------------------------------------------------


def user_rules(size: int) -> None:
    """RE2 on `size`-character adversarial subjects vs Python re on a few dozen characters."""
    print(f"## User rules (RE2), adversarial subject of {size:,} characters\n")
    print("| rule | subject | RE2 | Python re, 22 chars | Python re, 26 chars |")
    print("|---|---|---|---|---|")
    for pattern in EVIL_RULES:
        subjects = {"a…a!": "a" * size + "!", "x…x": "x" * size, "a a …": repeat_to("a ", size)}
        name, subject = max(
            ((n, s) for n, s in subjects.items()),
            key=lambda item: cpu(lambda: compile_rule(pattern).search(item[1][:2000])),
        )
        rx = compile_rule(pattern)
        worst = max(cpu(lambda: rx.search(subject)) for _ in range(3))
        py = re.compile(pattern)
        small = [cpu(lambda n=n: py.search(subject[: n - 1] + subject[-1])) for n in (22, 26)]
        print(f"| `{pattern}` | `{name}` | {worst * 1e3:.2f} ms | {_ms(small[0])} | {_ms(small[1])} |")
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
    """The costliest way `source` calls pattern `attr`: search (findall, sub …), match, fullmatch."""
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
        worst_unit, worst_small = "", -1.0
        for unit in units_for(pattern):
            t = cpu(lambda: run(repeat_to(unit, SMALL)))
            if t > worst_small:
                worst_unit, worst_small = unit, t
        text_small, text_large = repeat_to(worst_unit, SMALL), repeat_to(worst_unit, LARGE)
        t_large = max(cpu(lambda: run(text_large)) for _ in range(2))
        t_small = max(cpu(lambda: run(text_small)) for _ in range(3))
        growth = t_large / t_small if t_small > 2e-5 else 1.0
        label = f"{name} ({method})"
        if growth > 8 and t_large > 1e-3:  # super-linear: do not run it at full size
            estimate = t_large * (size / LARGE) ** 2
            rows.append((estimate, label, worst_unit, growth, f"~{_ms(estimate)} (est.)", True))
            continue
        t_full = cpu(lambda: run(repeat_to(worst_unit, size)))
        rows.append((t_full, label, worst_unit, growth, _ms(t_full), False))
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
        times = sorted(((cpu(lambda u=u: fn(repeat_to(u, LINE_CAP))), u) for u in units), reverse=True)
        for t, unit in times[:top]:
            print(f"| {name} | `{unit!r}` | {_ms(t)} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="adversarial input length")
    parser.add_argument("--top", type=int, default=20, help="rows of the built-in table")
    parser.add_argument("--skip-builtins", action="store_true")
    args = parser.parse_args()
    user_rules(args.size // 2)
    if not args.skip_builtins:
        sweep(args.size, args.top)
    functions(2)


if __name__ == "__main__":
    main()
