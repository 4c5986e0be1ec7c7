"""Redaction: throughput (lines/s) and detection (recall, false positives), with a comparison.

    .venv/bin/python bench/redact_bench.py                  # 200 repeats, genlogs 20k lines
    .venv/bin/python bench/redact_bench.py --repeats 50 --genlogs 0

Corpora: tests/data/secrets_corpus.txt (KIND<TAB>SECRET<TAB>LINE) and tests/data/ordinary_lines.txt
(production lines without secrets); plus, as a corpus written by someone else, the seeded output
of bench/genlogs.py. Throughput is CPU time of Redactor.redact over each corpus, one core.

detect-secrets (Yelp) is measured for comparison when it is installed in a separate virtualenv
(it is not a watcher dependency):

    python3 -m venv /tmp/ds-venv && /tmp/ds-venv/bin/pip install detect-secrets
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from watcher.fix.redact import Redactor  # noqa: E402

DATA = ROOT / "tests" / "data"

# Runs inside the detect-secrets virtualenv. Three ways to use it on log lines:
#   raw:   the plugins' analyze_line on each line, no filters (entropy plugins look at quoted
#          strings only: JSON log values)
#   file:  the corpus written to a .log file and scanned as `detect-secrets scan` does
#          (SecretsCollection.scan_file with the default heuristic filters)
#   eager: scan_line on each line, as `detect-secrets scan --string` does (unquoted words too)
# Each with the two entropy plugins only; "file" also with every default plugin.
_DS_SCRIPT = r"""
import json, os, sys, tempfile
from detect_secrets import SecretsCollection
from detect_secrets.core.scan import get_plugins, scan_line
from detect_secrets.settings import default_settings, transient_settings
import detect_secrets.__version__ as version
corpora = json.load(sys.stdin)
ENTROPY = {"plugins_used": [{"name": "Base64HighEntropyString", "limit": 4.5},
                            {"name": "HexHighEntropyString", "limit": 3.0}]}
def summary(per_line):
    hits = [found for found in per_line if found]
    examples = sorted({v[:40] for found in hits for v in found})
    return {"flagged": len(hits), "total": len(per_line), "examples": examples[:4]}
def raw(lines):
    plugins = get_plugins()
    return summary([{s.secret_value for p in plugins
                     for s in p.analyze_line(filename="corpus.log", line=line, line_number=i)}
                    for i, line in enumerate(lines, 1)])
def eager(lines):
    return summary([{s.secret_value for s in scan_line(line)} for line in lines])
def file(lines):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.log")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        found = SecretsCollection()
        found.scan_file(path)
    per_line = [set() for _ in lines]
    for _, s in found:
        per_line[s.line_number - 1].add(s.secret_value or "")
    return summary(per_line)
out = {"version": version.VERSION}
for mode, scan in (("raw", raw), ("file", file), ("eager", eager)):
    with transient_settings(ENTROPY):
        out[f"entropy {mode}"] = {name: scan(lines) for name, lines in corpora.items()}
with default_settings():
    out["all plugins file"] = {name: file(lines) for name, lines in corpora.items()}
print(json.dumps(out))
"""


def _secrets() -> list[tuple[str, str, str]]:
    rows = (DATA / "secrets_corpus.txt").read_text("utf-8").splitlines()
    return [tuple(r.split("\t")) for r in rows if r and not r.startswith("#")]  # type: ignore[misc]


def _ordinary() -> list[str]:
    rows = (DATA / "ordinary_lines.txt").read_text("utf-8").splitlines()
    return [r for r in rows if r and not r.startswith("#")]


def _throughput(redactor: Redactor, lines: list[str], repeats: int) -> tuple[float, float]:
    """(lines/s, MB/s) of CPU time, best of three rounds."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for _ in range(repeats):
            for line in lines:
                redactor.redact(line)
        best = min(best, time.process_time() - start)
    count = len(lines) * repeats
    size = sum(len(line.encode()) for line in lines) * repeats
    return count / best, size / best / 1e6


def _detection(
    redactor: Redactor, secrets: list[tuple[str, str, str]], ordinary: list[str]
) -> None:
    gone = [value not in redactor.redact(text) for _, value, text in secrets]
    kinds = [f"<secret:{kind}:" in redactor.redact(text) for kind, _, text in secrets]
    flagged = [line for line in ordinary if redactor.findings(line)]
    print(f"  recall: {sum(gone)}/{len(secrets)} secrets redacted ({sum(gone) / len(secrets):.1%})")
    print(f"  right kind: {sum(kinds)}/{len(secrets)}")
    print(
        f"  false positives: {len(flagged)}/{len(ordinary)} ordinary lines touched "
        f"({len(flagged) / len(ordinary):.2%})"
    )
    for line in flagged[:5]:
        print(f"    {line[:110]}")


def _genlogs(redactor: Redactor, count: int) -> None:
    import genlogs  # bench/genlogs.py, stdlib only

    lines = [line.rstrip("\n") for line in genlogs.generate(count, seed=3, error_rate=0.05)]
    kinds: Counter[str] = Counter()
    touched = 0
    for line in lines:
        found = redactor.findings(line)
        touched += bool(found)
        kinds.update(f.kind for f in found)
    print(f"genlogs ({len(lines)} lines, seed 3, written without this redactor in mind):")
    print(
        f"  lines touched: {touched} ({touched / len(lines):.2%}); findings by kind: {dict(kinds)}"
    )
    rate, mbps = _throughput(redactor, lines, 1)
    print(f"  throughput: {rate:,.0f} lines/s ({mbps:.1f} MB/s)")


def _detect_secrets(python: str, secrets: list[tuple[str, str, str]], ordinary: list[str]) -> None:
    corpora = {"ordinary": ordinary, "secrets": [text for _, _, text in secrets]}
    try:
        done = subprocess.run(
            [python, "-c", _DS_SCRIPT],
            input=json.dumps(corpora),
            capture_output=True,
            text=True,
            timeout=600,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"detect-secrets: not measured ({python}: {exc})")
        return
    result = json.loads(done.stdout)
    print(f"detect-secrets {result.pop('version')} (false positives: ordinary lines flagged):")
    for mode, runs in result.items():
        ordinary_run, secrets_run = runs["ordinary"], runs["secrets"]
        print(
            f"  {mode:18} false positives {ordinary_run['flagged']:3}/{ordinary_run['total']} "
            f"({ordinary_run['flagged'] / ordinary_run['total']:5.1%}); "
            f"secret lines flagged {secrets_run['flagged']}/{secrets_run['total']}"
        )
        if ordinary_run["examples"]:
            print(f"    flagged on ordinary lines, e.g. {', '.join(ordinary_run['examples'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--genlogs", type=int, default=20_000, help="lines; 0 to skip")
    parser.add_argument("--ds-python", default="/tmp/ds-venv/bin/python")
    args = parser.parse_args()

    secrets, ordinary = _secrets(), _ordinary()
    redactor = Redactor(key=b"bench")
    print(
        f"rules: {len(redactor.rules)}; corpora: {len(secrets)} secrets, {len(ordinary)} ordinary"
    )
    for name, lines in (("ordinary", ordinary), ("secrets", [t for _, _, t in secrets])):
        rate, mbps = _throughput(redactor, lines, args.repeats)
        print(f"throughput {name}: {rate:,.0f} lines/s ({mbps:.1f} MB/s), {args.repeats} repeats")
    print("detection:")
    _detection(redactor, secrets, ordinary)
    if args.genlogs:
        _genlogs(redactor, args.genlogs)
    _detect_secrets(args.ds_python, secrets, ordinary)


if __name__ == "__main__":
    main()
