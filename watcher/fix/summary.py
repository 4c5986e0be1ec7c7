"""What may leave the verify sandbox: a summary, never the raw output.

Model-written code runs inside the sandbox, and whatever it prints is attacker-controlled: a
test can print a secret it found in base64, hex or any other dress. So the raw output stays in
the process; only a `VerifySummary` goes on — pass/fail, counts, failing test names and a capped
tail — and the tail (and each name) is sanitized, redacted and then checked for encoded blobs:
any encoding of a secret the process knows, or a long high-entropy run. When in doubt it is
dropped, not posted: the summary says it was withheld and why, never what it was.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

TAIL_CHARS = 2_000
MAX_NAMES = 20
MIN_SECRET = 8  # shorter values are not worth hunting: they would match by chance
_RUN = re.compile(r"[A-Za-z0-9+=_-]{32,}")  # no "/": paths are not blobs
_HEX_RUN = re.compile(r"\b[0-9a-fA-F]{64,}\b")

# pytest: "1 failed, 2 passed, 1 error in 0.12s"; unittest: "Ran 3 tests" + "FAILED (failures=1)"
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")
_PYTEST_NAME = re.compile(r"^(FAILED|ERROR) (?!\()(\S+)", re.MULTILINE)
_UNITTEST_NAME = re.compile(r"^(FAIL|ERROR): (\S+) \(([^)]*)\)", re.MULTILINE)
_UNITTEST_RAN = re.compile(r"^Ran (\d+) tests?", re.MULTILINE)
_UNITTEST_BAD = re.compile(r"(failures|errors)=(\d+)")


@dataclass(frozen=True)
class VerifySummary:
    """One run of verify_command in the sandbox, as far as it may be published."""

    ran: bool  # False: not run (no sandbox available, or setup failed)
    ok: bool = False  # exit status 0
    exit_code: int | None = None
    passed: int | None = None
    failed: int | None = None
    errors: int | None = None
    failing: tuple[str, ...] = ()  # failing test ids (pytest node ids / unittest ids)
    tail: str = ""  # the output's last lines, redacted and checked; "" when withheld
    withheld: str = ""  # why the tail (or some names) were dropped
    timed_out: bool = False
    sandbox: str = ""  # "namespaces", "uid", "off"
    note: str = ""  # why it did not run, or what limited it
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, for Fix.details."""
        data = asdict(self)
        data["failing"] = list(self.failing)
        return data

    def counts(self) -> str:
        """ "3 passed, 1 failed" (what was parsed), or the exit status."""
        found = ((self.passed, "passed"), (self.failed, "failed"), (self.errors, "errors"))
        parts = [f"{n} {label}" for n, label in found if n]
        if parts:
            return ", ".join(parts)
        return "exit status 0" if self.ok else f"exit status {self.exit_code}"


def not_run(note: str, sandbox: str = "") -> VerifySummary:
    """A verification that could not run (the fix is then published as NOT verified)."""
    return VerifySummary(ran=False, note=note, sandbox=sandbox)


def summarise(
    exit_code: int | None,
    output: str,
    *,
    secrets: Iterable[str],
    clean: Callable[[str], str],
    timed_out: bool = False,
    sandbox: str = "",
) -> VerifySummary:
    """The publishable summary of a run. `clean`: sanitize + redact (the pipeline's)."""
    secrets = [s for s in secrets if len(s) >= MIN_SECRET]
    counts = parse_counts(output)
    failing: list[str] = []
    dropped = 0
    for name in failing_names(output):
        if doubt(name, secrets) is None and len(name) <= 300:
            failing.append(clean(name))
        else:
            dropped += 1
    tail, why = checked_tail(output, secrets, clean)
    if dropped:
        why = "; ".join(w for w in (why, f"{dropped} failing test name(s) withheld") if w)
    return VerifySummary(
        ran=True,
        ok=exit_code == 0 and not timed_out,
        exit_code=exit_code,
        passed=counts.get("passed"),
        failed=counts.get("failed"),
        errors=counts.get("errors"),
        failing=tuple(failing[:MAX_NAMES]),
        tail=tail,
        withheld=why,
        timed_out=timed_out,
        sandbox=sandbox,
    )


def checked_tail(output: str, secrets: list[str], clean: Callable[[str], str]) -> tuple[str, str]:
    """(tail, "") when the output's tail is safe to publish, else ("", why it was withheld)."""
    tail = output[-TAIL_CHARS * 2 :]
    reason = doubt(tail, secrets)
    if reason is not None:
        return "", f"output withheld: {reason}"
    tail = clean(tail)
    if len(tail) > TAIL_CHARS:
        tail = "…" + tail[-TAIL_CHARS:]
    reason = doubt(tail, secrets)  # cleaning joins text across removed characters: check again
    return ("", f"output withheld: {reason}") if reason else (tail, "")


def doubt(text: str, secrets: Iterable[str]) -> str | None:
    """Why `text` may carry a secret (an encoding of a known one, a high-entropy run), or None.
    The reason names the kind of finding, never the secret."""
    squeezed = re.sub(r"\s+", "", text)
    for secret in secrets:
        for kind, form in encodings(secret):
            if form in text or form in squeezed:
                return f"it contains a secret of this process ({kind})"
    for match in _RUN.finditer(text):
        if _high_entropy(match.group(0)):
            return "it contains a long high-entropy string"
    if _HEX_RUN.search(text):
        return "it contains a long hex string"
    return None


def encodings(secret: str) -> list[tuple[str, str]]:
    """The forms a secret takes when a test prints it encoded: plain, reversed, hex, and the
    base64/base32 cores of each of its alignments (a secret inside a longer encoded blob)."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = [("plain", secret), ("reversed", secret[::-1]), ("hex", raw.hex())]
    forms.append(("hex", raw.hex().upper()))
    for pad in range(3):
        core = _b64_core(raw, pad, base64.b64encode)
        forms += [("base64", core), ("base64url", core.replace("+", "-").replace("/", "_"))]
    for pad in range(5):
        forms.append(("base32", _b32_core(raw, pad)))
    return [(kind, form) for kind, form in forms if len(form) >= MIN_SECRET]


def _b64_core(raw: bytes, pad: int, encode: Callable[[bytes], bytes]) -> str:
    """The base64 characters that depend only on `raw` when it starts `pad` bytes into a blob."""
    text = encode(b"\0" * pad + raw + b"\0\0").decode()
    start = math.ceil(pad * 4 / 3)
    end = ((pad + len(raw)) * 4) // 3
    return text[start:end]


def _b32_core(raw: bytes, pad: int) -> str:
    text = base64.b32encode(b"\0" * pad + raw + b"\0" * 5).decode()
    start = math.ceil(pad * 8 / 5)
    end = ((pad + len(raw)) * 8) // 5
    return text[start:end]


def _high_entropy(run: str) -> bool:
    """A base64-like run that looks random: mixed classes and > 4.2 bits a character."""
    if run.isdigit() or (run.isalpha() and (run.islower() or run.isupper())):
        return False
    counts = Counter(run)
    bits = -sum(c / len(run) * math.log2(c / len(run)) for c in counts.values())
    return bits > 4.2 or (len(run) >= 64 and bits > 3.8)


def parse_counts(output: str) -> dict[str, int]:
    """passed/failed/errors from pytest's or unittest's closing lines (the last ones win)."""
    counts: dict[str, int] = {}
    lines = [ln for ln in output.splitlines() if _PYTEST_COUNT.search(ln) and " in " in ln]
    if lines:
        for number, word in _PYTEST_COUNT.findall(lines[-1]):
            key = "errors" if word.startswith("error") else word
            counts[key] = int(number)
        return counts
    ran = _UNITTEST_RAN.findall(output)
    if ran:
        bad = {k: int(v) for k, v in _UNITTEST_BAD.findall(output.rsplit("Ran ", 1)[-1])}
        failed, errors = bad.get("failures", 0), bad.get("errors", 0)
        counts.update(passed=int(ran[-1]) - failed - errors, failed=failed, errors=errors)
    return counts


def failing_names(output: str) -> list[str]:
    """Failing test ids: pytest's short summary (FAILED/ERROR node ids) or unittest's
    FAIL:/ERROR: headers (as module.Class.method); in order, without duplicates."""
    names = [m.group(2) for m in _PYTEST_NAME.finditer(output)]
    for match in _UNITTEST_NAME.finditer(output):
        qualified = match.group(3)
        names.append(qualified if qualified.endswith(match.group(2)) else match.group(2))
    return list(dict.fromkeys(names))


def known_secrets(environ: Mapping[str, str], is_secret: Callable[[str], bool]) -> list[str]:
    """Values of the environment variables whose names say they are secrets (and the
    ones a longer value holds, e.g. a URL's password), long enough to hunt for."""
    found: list[str] = []
    for name, value in environ.items():
        if is_secret(name) and len(value) >= MIN_SECRET:
            found.append(value)
            found += [p for p in re.split(r"[:@/?&=\s]", value) if len(p) >= 12 and p != value]
    return list(dict.fromkeys(found))


def decodes_to(blob: str, secret: str) -> bool:
    """Whether `blob` is the base64 of text holding `secret` (for tests and the bench)."""
    try:
        return secret.encode() in base64.b64decode(blob + "=" * (-len(blob) % 4))
    except (binascii.Error, ValueError):
        return False
