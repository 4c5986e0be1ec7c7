"""What the model sees of the code: the group's frames mapped onto the repository checkout.

Frame paths are where the code ran (`/app/src/payments.py`, `/var/task/app.py`, a JVM
`com/acme/Foo.java`), not where it sits in the checkout, so each is matched to the checkout file
sharing the longest path suffix. Only files found by walking the checkout are ever opened — a
frame path is never joined onto the repository root — and each is resolved and checked to lie
inside it, so `../` in a log or a symlink to /etc cannot make this read outside the checkout.

Plain synchronous file I/O: the orchestrator runs `build_context` in a thread.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from watcher.fix import related
from watcher.model import ErrorGroup, Frame

MAX_FILE_BYTES = 1_000_000
MAX_INDEXED_FILES = 200_000
MAX_SAMPLES = 3
MAX_SAMPLE_CHARS = 8_000
MAX_FRAMES = 40
MIN_WINDOW = 5  # below this many lines around a frame, an excerpt is not worth its bytes
# Never part of the application's source; skipping them keeps the walk short.
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", ".venv", "venv", "__pycache__", ".tox", ".nox"}
    | {".mypy_cache", ".pytest_cache", ".ruff_cache", ".idea", ".gradle"}
)
# path-like words in a message: "config/settings.yaml", "payments.py"
_PATH_WORD = re.compile(
    r"[\w./\\-]*\w\.(?:py|pyi|js|mjs|cjs|ts|tsx|jsx|java|kt|scala|go|rb|php|cs|rs|c|cc|cpp|h"
    r"|hpp|swift|ex|exs|yaml|yml|json|toml|ini|cfg|sql)\b"
)


@dataclass(frozen=True, slots=True)
class FileExcerpt:
    """Lines `start_line`..`end_line` (1-based, inclusive) of a checkout file, verbatim."""

    path: str  # relative to the repository root, "/"-separated
    start_line: int
    end_line: int
    text: str

    def numbered(self) -> str:
        """The excerpt with a right-aligned line number and " | " before every line."""
        width = len(str(self.end_line))
        lines = self.text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return "\n".join(f"{self.start_line + i:>{width}} | {line}" for i, line in enumerate(lines))


@dataclass(slots=True)
class FixContext:
    """Everything the analysis gets: code excerpts, the group's evidence, what was not found."""

    files: list[FileExcerpt]
    evidence: dict[str, Any]
    missing: list[str] = field(default_factory=list)  # in-app frame files not in the checkout
    dropped: list[str] = field(default_factory=list)  # found, but left out for the byte budget
    root: Path | None = None  # the checkout, for the model's read-only tools (watcher.fix.tools)
    tool_calls: list[Any] = field(default_factory=list)  # their ToolCalls, across repair rounds
    read: set[str] = field(default_factory=set)  # files the model read with them

    @property
    def code_bytes(self) -> int:
        """UTF-8 bytes of all excerpt texts: what `max_bytes` bounds."""
        return sum(len(f.text.encode("utf-8")) for f in self.files)


def build_context(
    group: ErrorGroup,
    repo_path: Path,
    *,
    max_bytes: int = 60_000,
    lines_around: int = 40,
    service_paths: Mapping[str, str] | None = None,
) -> FixContext:
    """The code around the group's frames (in-app first, innermost first), the definitions the
    bug file imports from the app and its tests, and the group's evidence.

    At most `max_bytes` of excerpt text: when they do not all fit, a frame's window is narrowed,
    then the outermost frames are dropped first. `service_paths`: source name -> the checkout
    directory of that service (a monorepo), preferred when a frame's file name is ambiguous.
    """
    root = repo_path.resolve()
    index = RepoIndex.build(root)
    targets, missing = _targets(group, index, root, service_paths or {})
    files, dropped = _excerpts(root, targets, max_bytes, lines_around, missing)
    return FixContext(
        files=files, evidence=evidence(group), missing=missing, dropped=dropped, root=root
    )


# --- the checkout ----------------------------------------------------------------------------


@dataclass(slots=True)
class RepoIndex:
    """Every file of the checkout by file name, as relative POSIX paths."""

    by_name: dict[str, list[PurePosixPath]]

    @classmethod
    def build(cls, root: Path) -> RepoIndex:
        """Walk the checkout once, not following directory symlinks, skipping tool dirs."""
        by_name: dict[str, list[PurePosixPath]] = {}
        for count, rel in enumerate(walk(root)):
            if count >= MAX_INDEXED_FILES:
                break
            by_name.setdefault(rel.name, []).append(rel)
        return cls(by_name)

    def best(self, path: str, *, min_parts: int = 1) -> tuple[int, list[PurePosixPath]]:
        """The checkout files sharing the longest path suffix with `path` (all of them on a
        tie), and that suffix's length; (0, []) when none shares `min_parts` parts."""
        parts = _frame_parts(path)
        if not parts:
            return 0, []
        top, found = 0, []
        for candidate in self.by_name.get(parts[-1], ()):
            score = _common_suffix(parts, candidate.parts)
            if score >= min_parts and score > top:
                top, found = score, [candidate]
            elif score >= min_parts and score == top:
                found.append(candidate)
        return top, found

    def match(
        self, path: str, *, min_parts: int = 1, roots: Iterable[str] = ()
    ) -> PurePosixPath | None:
        """The checkout file with the longest common path suffix, at least `min_parts` long.

        On a tie (a monorepo's several `api.py`), one under `roots` (the service's directory)
        wins; then the shortest path, then the first in sort order, so the answer is stable.
        """
        _, found = self.best(path, min_parts=min_parts)
        preferred = [c for c in found if any(_under(c, r) for r in roots)]
        return min(preferred or found, key=lambda c: (len(c.parts), str(c)), default=None)


def _under(path: PurePosixPath, root: str) -> bool:
    return bool(root) and path.is_relative_to(root)


def walk(root: Path) -> Iterator[PurePosixPath]:
    """Every file of the checkout, relative, in a stable order, without tool directories."""
    for directory, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        rel_dir = PurePosixPath(Path(directory).relative_to(root).as_posix())
        for name in sorted(files):
            yield rel_dir / name


def _frame_parts(path: str) -> tuple[str, ...]:
    """Path components of a frame file, without URL schemes, "." and ".." or empty parts."""
    path = path.replace("\\", "/")
    path = re.sub(r"^[a-zA-Z][\w+.-]*://", "", path)  # file://, webpack:///
    if "<" in path or ">" in path:  # "<string>", "<frozen runpy>": no file
        return ()
    return tuple(part for part in path.split("/") if part not in ("", ".", ".."))


def _common_suffix(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def read_lines(root: Path, rel: PurePosixPath) -> list[str] | None:
    """The file's lines, or None when it is outside the checkout, too big, binary or unreadable."""
    try:
        real = (root / rel).resolve(strict=True)
        if not real.is_relative_to(root) or not real.is_file():
            return None
        if real.stat().st_size > MAX_FILE_BYTES:
            return None
        data = real.read_bytes()
    except (OSError, RuntimeError):  # RuntimeError: a symlink loop
        return None
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace").splitlines(keepends=True)


# --- which files and lines -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    path: PurePosixPath
    line: int | None
    name: str  # the path as the frame or message gave it
    required: bool = True  # an in-app frame: named in `missing` when it cannot be read
    span: tuple[int, int] | None = None  # exactly these lines (a definition, a test file head)


def ordered_frames(group: ErrorGroup) -> list[Frame]:
    """The group's frames, in-app ones first, innermost first within each kind."""
    frames = list(group.frames) or ([group.top_frame] if group.top_frame else [])
    inner_first = list(reversed(frames))
    return [f for f in inner_first if f.in_app] + [f for f in inner_first if not f.in_app]


def _targets(
    group: ErrorGroup, index: RepoIndex, root: Path, service_paths: Mapping[str, str]
) -> tuple[list[_Target], list[str]]:
    targets: list[_Target] = []
    missing: list[str] = []
    frames = ordered_frames(group)[:MAX_FRAMES]
    roots = service_roots(group, index, service_paths)
    for frame in frames:
        # a library frame must match on its package dir too: "models.py" alone is too common
        found = index.match(frame.file, min_parts=1 if frame.in_app else 2, roots=roots)
        if found is not None:
            targets.append(_Target(found, frame.line, frame.file, frame.in_app))
        elif frame.in_app and frame.file not in missing and _frame_parts(frame.file):
            missing.append(frame.file)
    app = [t for t in targets if t.required]
    spans = _related(app[0].path, index, root) if app else []
    targets[len(app) : len(app)] = [
        _Target(span.path, None, span.why, required=False, span=(span.first, span.last))
        for span in spans
    ]
    for word in _message_paths(group):
        found = index.match(word, roots=roots)
        if found is not None and all(t.path != found for t in targets):
            targets.append(_Target(found, None, word, required=False))
    return targets, missing


def service_roots(
    group: ErrorGroup, index: RepoIndex, service_paths: Mapping[str, str]
) -> list[str]:
    """Checkout directories the group's code lives under, for ambiguous file names: the
    configured directory of each of its sources, then what its unambiguous in-app frames show
    (`/app/handlers.py` found only as `services/billing/handlers.py`: the service's code runs
    from `services/billing`)."""
    roots = [service_paths[s].strip("/") for s in group.sources if service_paths.get(s)]
    for frame in ordered_frames(group)[:MAX_FRAMES]:
        score, found = index.best(frame.file) if frame.in_app else (0, [])
        if len(found) == 1 and len(found[0].parts) > score:
            roots.append(str(PurePosixPath(*found[0].parts[: len(found[0].parts) - score])))
    return list(dict.fromkeys(roots))


def _related(bug: PurePosixPath, index: RepoIndex, root: Path) -> list[related.Span]:
    """What the bug file imports from the app, then its tests (see watcher.fix.related)."""

    def resolve(suffix: str) -> PurePosixPath | None:
        parts = _frame_parts(suffix)
        return index.match(suffix, min_parts=len(parts), roots=[str(bug.parent)])

    def read(path: PurePosixPath) -> list[str] | None:
        return read_lines(root, path)

    lines = read(bug) if bug.suffix == ".py" else None
    spans = related.imported_definitions(bug, "".join(lines), resolve, read) if lines else []
    return spans + related.module_tests(bug, index.by_name, read)


def _message_paths(group: ErrorGroup) -> list[str]:
    """File names mentioned in the template or the first sample: lowest priority, at most 5."""
    texts = [group.template, *(s.text[:MAX_SAMPLE_CHARS] for s in group.samples[:1])]
    seen: dict[str, None] = {}
    for text in texts:
        for match in _PATH_WORD.finditer(text):
            seen.setdefault(match.group(0))
    return list(seen)[:5]


def _excerpts(
    root: Path, targets: list[_Target], max_bytes: int, around: int, missing: list[str]
) -> tuple[list[FileExcerpt], list[str]]:
    files: dict[PurePosixPath, list[str] | None] = {}
    covered: dict[PurePosixPath, set[int]] = {}
    dropped: list[str] = []
    budget = max_bytes
    for target in targets:
        if target.path not in files:
            files[target.path] = read_lines(root, target.path)
            covered[target.path] = set()
        lines, have = files[target.path], covered[target.path]
        if lines is None:  # outside the checkout, binary, too big: as good as missing
            if target.required and target.name not in missing:
                missing.append(target.name)
            continue
        if target.span is not None:
            wanted = set(range(target.span[0], min(target.span[1], len(lines)) + 1)) - have
            fits = sum(_size(lines[i - 1]) for i in wanted) <= budget
            new = wanted if fits else None
        else:
            new = _fit(lines, have, target.line, around, budget)
        if new is None:
            dropped.append(f"{target.path}:{target.line or 1}")
            continue
        have.update(new)
        budget -= sum(_size(lines[i - 1]) for i in new)
    excerpts = [
        excerpt
        for path, have in covered.items()
        for excerpt in _ranges(str(path), files[path] or [], have)
    ]
    return excerpts, dropped


def _fit(
    lines: list[str], have: set[int], line: int | None, around: int, budget: int
) -> set[int] | None:
    """New line numbers of the widest window around `line` that fits the budget, else None.
    The window first takes in the whole enclosing function (the `def` and the lines that
    build the failing values) when that fits."""
    if not lines:
        return None
    center = min(max(line or 1, 1), len(lines))
    span = enclosing_function(lines, center) if line else None
    width = around
    while width >= min(MIN_WINDOW, around):
        start = max(1, center - width) if line else 1
        end = min(len(lines), center + width if line else 2 * width + 1)
        new = set(range(start, end + 1)) - have
        if span is not None and width == around:
            whole = new | (set(range(span[0], span[1] + 1)) - have)
            if sum(_size(lines[i - 1]) for i in whole) <= budget:
                return whole
        if sum(_size(lines[i - 1]) for i in new) <= budget:
            return new
        if width == 0:
            break
        width //= 2
    return None


_DEF = re.compile(
    r"^[ \t]*(?:(?:async\s+)?def\s+\w|class\s+\w|func\s|fn\s+\w"
    r"|(?:export\s+)?(?:async\s+)?function\b"
    r"|(?:(?:public|private|protected|static|final|synchronized)\s+)+[\w<>\[\], .]+\s+\w+\s*\()"
)
MAX_FUNCTION_LINES = 200


def enclosing_function(lines: list[str], line: int) -> tuple[int, int] | None:
    """(first, last) line of the function or method around `line` (1-based), by indentation:
    the nearest `def`/`func`/`function`/method header above that is indented less than the
    line, to the last line before code at its indentation or less. None when there is none
    or it is longer than MAX_FUNCTION_LINES."""
    target = lines[line - 1]
    depth = _depth(target) if target.strip() else 10**6
    for first in range(line, max(0, line - MAX_FUNCTION_LINES), -1):
        if _DEF.match(lines[first - 1]) and (_depth(lines[first - 1]) < depth or first == line):
            break
    else:
        return None
    head = _depth(lines[first - 1])
    last = first
    for number in range(first + 1, min(len(lines), first + MAX_FUNCTION_LINES) + 1):
        text = lines[number - 1]
        if text.strip() and _depth(text) <= head and not text.lstrip().startswith((")", "}")):
            break
        last = number
    while last > first and not lines[last - 1].strip():
        last -= 1
    if last - first >= MAX_FUNCTION_LINES:
        return None
    return first, last


def _depth(text: str) -> int:
    return len(text.expandtabs(4)) - len(text.expandtabs(4).lstrip())


def _ranges(path: str, lines: list[str], have: set[int]) -> Iterable[FileExcerpt]:
    """One excerpt per run of consecutive covered lines."""
    run: list[int] = []
    for number in sorted(have):
        if run and number != run[-1] + 1:
            yield _excerpt(path, lines, run)
            run = []
        run.append(number)
    if run:
        yield _excerpt(path, lines, run)


def _excerpt(path: str, lines: list[str], run: list[int]) -> FileExcerpt:
    text = "".join(lines[run[0] - 1 : run[-1]])
    return FileExcerpt(path, run[0], run[-1], text)


def _size(line: str) -> int:
    return len(line.encode("utf-8"))


# --- evidence --------------------------------------------------------------------------------


def evidence(group: ErrorGroup) -> dict[str, Any]:
    """The group's facts as plain data. Log-derived strings in it are untrusted and unredacted."""
    return {
        "group_id": group.id,
        "kind": group.kind,
        "category": group.category,
        "severity": group.severity,
        "fixable": group.fixable,
        "count": group.count,
        "window_counts": dict(group.window_counts),
        "trend": group.trend,
        "first_seen": _iso(group.first_seen),
        "last_seen": _iso(group.last_seen),
        "sources": dict(group.sources),
        "suggested_fix": group.suggested_fix,
        "exception_type": group.exception_type,
        # ErrorGroup has no exception message of its own (yet); the template carries it
        "exception_message": getattr(group, "exception_message", None),
        "template": group.template,
        "frames": [
            {"file": f.file, "line": f.line, "function": f.function, "in_app": f.in_app}
            for f in ordered_frames(group)[:MAX_FRAMES]
        ],
        # one full sample: the others repeat its trace (they were half the prompt), so only
        # what differs between them — their failing message lines — is listed
        "samples": [
            {
                "timestamp": _iso(s.timestamp),
                "source": s.source,
                "line": s.line,
                "text": s.text[:MAX_SAMPLE_CHARS],
            }
            for s in group.samples[:1]
        ],
        "distinct_messages": distinct_messages(group),
    }


def distinct_messages(group: ErrorGroup, limit: int = 10) -> list[str]:
    """The distinct last lines (the exception and its values) of the group's samples."""
    found: dict[str, None] = {}
    for sample in group.samples:
        lines = [line.strip() for line in sample.text.splitlines() if line.strip()]
        if lines:
            found.setdefault(lines[-1][:300])
        if len(found) >= limit:
            break
    return list(found)


def _iso(ts: float) -> str | None:
    if not ts:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
