#!/usr/bin/env python3
"""Re-capture the signal corpus's traces by really running the crashing programs beside this file.

Each bug of each language is run a few times with different values (ids, and the ports the
programs pick themselves); whatever the runtime writes to stderr is kept verbatim, except that
the checkout's path to `bench/corpus/<lang>` is replaced by `/srv/app` so a re-capture on
another machine gives the same text. Output: `bench/data/signal/traces.jsonl`, one object per
run: lang, bug, group, category, occurrence, value, runtime, text.

    python bench/corpus/capture.py                 # every language whose runtime is on PATH
    python bench/corpus/capture.py --lang python node

Needs python3 (3.11), node (20) and java/javac (17); go, ruby and php are captured when installed
(`apt-get install -y golang-go ruby php-cli`). A language whose runtime is missing keeps the
traces already in the file. The truth of the corpus is the `category` column below and the
(lang, bug) pair: both are decided here once per bug, never per event.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "data" / "signal" / "traces.jsonl"
APP_ROOT = "/srv/app"
# Different values per occurrence: they reach messages (ids, keys) so grouping must mask them.
VALUES = (4411, 5027, 7318, 8862)


@dataclass(frozen=True)
class Bug:
    lang: str
    name: str
    category: str
    occurrences: int = 3


BUGS = [
    Bug("python", "key_error", "internal_error"),
    Bug("python", "type_error", "internal_error"),
    Bug("python", "attr_error", "internal_error"),
    Bug("python", "during_handling", "internal_error"),
    Bug("python", "db_error", "database_error"),
    Bug("python", "conn_refused", "external_service_error"),
    Bug("python", "timeout", "timeout_error"),
    Bug("python", "json_body", "validation_error"),
    Bug("python", "cache_error", "cache_error"),
    Bug("python", "rate_limited", "rate_limit_error"),
    Bug("python", "access_denied", "auth_error"),
    Bug("node", "uncaught_type", "internal_error"),
    Bug("node", "cause", "external_service_error"),
    Bug("node", "unhandled_rejection", "internal_error"),
    Bug("node", "rejection_reason", "internal_error"),
    Bug("node", "aggregate", "external_service_error"),
    Bug("node", "econnrefused", "external_service_error"),
    Bug("node", "json_body", "validation_error"),
    Bug("node", "timeout", "timeout_error"),
    Bug("node", "cache", "cache_error"),
    Bug("node", "provider_overloaded", "provider_error"),
    Bug("java", "npe_thread", "internal_error"),
    Bug("java", "caused_by", "database_error"),
    Bug("java", "number_format", "validation_error"),
    Bug("java", "conn_refused", "external_service_error"),
    Bug("java", "timeout", "timeout_error"),
    Bug("java", "pool_exhausted", "database_error"),
    Bug("go", "nil_map", "internal_error"),
    Bug("go", "nil_pointer", "internal_error"),
    Bug("go", "index_repanic", "internal_error"),
    Bug("go", "deadline", "timeout_error"),
    Bug("ruby", "no_method", "internal_error"),
    Bug("ruby", "zero_division", "internal_error"),
    Bug("ruby", "key_error", "internal_error"),
    Bug("ruby", "conn_refused", "external_service_error"),
    Bug("php", "type_error", "internal_error"),
    Bug("php", "null_call", "internal_error"),
    Bug("php", "json_body", "validation_error"),
]

RUNTIMES = {
    "python": "python3",
    "node": "node",
    "java": "javac",
    "go": "go",
    "ruby": "ruby",
    "php": "php",
}


def build(lang: str, work: Path) -> list[str]:
    """Compile what needs compiling; return the command prefix that runs one case."""
    src = HERE / lang
    if lang == "python":
        return [sys.executable, "-m", "shopapp.crash"]
    if lang == "node":
        return ["node", "crash.js"]
    if lang == "ruby":
        return ["ruby", "crash.rb"]
    if lang == "php":
        # CLI with log_errors to stderr: the `PHP Fatal error:  Uncaught …` form servers log
        return [
            "php",
            "-n",
            "-d",
            "display_errors=0",
            "-d",
            "log_errors=1",
            "-d",
            "error_log=",
            "-d",
            "html_errors=0",
            "crash.php",
        ]
    if lang == "java":
        classes = work / "java"
        sources = [str(p) for p in sorted(src.rglob("*.java"))]
        subprocess.run(["javac", "-d", str(classes), *sources], check=True)
        return [
            "java",
            "-Xshare:auto",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            str(classes),
            "com.acme.Crash",
        ]
    if lang == "go":
        binary = work / "ledger"
        env = {**os.environ, "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=src, check=True, env=env)
        return [str(binary)]
    raise ValueError(lang)


def run_case(cmd: list[str], lang: str, bug: Bug, value: int) -> str:
    env = {**os.environ, "GOTRACEBACK": "all", "NO_COLOR": "1", "LANG": "C.UTF-8"}
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(
        [*cmd, bug.name, str(value)],
        cwd=HERE / lang,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = proc.stderr.replace(str(HERE / lang), APP_ROOT).rstrip("\n")
    if proc.returncode == 0 and not text:
        raise RuntimeError(f"{lang}/{bug.name} {value} did not fail")
    return "\n".join(line.rstrip() for line in text.split("\n"))


def runtime_version(lang: str) -> str:
    cmd = {
        "python": [sys.executable, "--version"],
        "node": ["node", "--version"],
        "java": ["java", "-version"],
        "go": ["go", "version"],
        "ruby": ["ruby", "--version"],
        "php": ["php", "--version"],
    }[lang]
    out = subprocess.run(cmd, capture_output=True, text=True)
    return ((out.stdout or out.stderr).strip().split("\n") or [""])[0]


def capture(langs: list[str]) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for lang in langs:
            cmd = build(lang, Path(tmp))
            version = runtime_version(lang)
            for bug in (b for b in BUGS if b.lang == lang):
                for occ in range(bug.occurrences):
                    value = VALUES[occ]
                    rows.append(
                        {
                            "lang": lang,
                            "bug": bug.name,
                            "group": f"{lang}.{bug.name}",
                            "category": bug.category,
                            "occurrence": occ,
                            "value": value,
                            "runtime": version,
                            "text": run_case(cmd, lang, bug, value),
                        }
                    )
                print(f"captured {lang}/{bug.name} x{bug.occurrences}", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--lang", nargs="*", help="languages to re-capture (default: all with a runtime)"
    )
    ap.add_argument("-o", "--output", type=Path, default=OUT)
    args = ap.parse_args(argv)
    wanted = args.lang or list(RUNTIMES)
    available = [lang for lang in wanted if shutil.which(RUNTIMES[lang])]
    for lang in sorted(set(wanted) - set(available)):
        print(
            f"skipping {lang}: {RUNTIMES[lang]} not on PATH (its old traces are kept)",
            file=sys.stderr,
        )
    kept = []
    if args.output.exists():
        kept = [json.loads(line) for line in args.output.read_text().splitlines() if line.strip()]
    fresh = capture(available)
    rows = [r for r in kept if r["lang"] not in available] + fresh
    order = {(b.lang, b.name): i for i, b in enumerate(BUGS)}
    rows.sort(key=lambda r: (order.get((r["lang"], r["bug"]), len(order)), r["occurrence"]))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} traces to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
