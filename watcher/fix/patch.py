"""The guard between the model's edits and the repository, and the writer for accepted ones.

Edits are search/replace blocks rather than unified diffs: a model reliably copies a few exact
lines but miscounts hunk headers, and "the search text occurs exactly once" is a check that
either holds against the base commit or does not — no fuzz, no offsets, no partial hunks.

`guard` is pure (it reads the checkout, writes nothing) and collects every reason a patch is
refused; `apply` writes only a GuardResult that passed.
"""

from __future__ import annotations

import difflib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from watcher.fix.policy import Policy, content_problems

SecretScan = Callable[[str], list[Any]]

MAX_FILE_BYTES = 2_000_000  # larger files are generated or data: not a hand fix


class EditLike(Protocol):
    """Anything with the three fields of an Edit (the analysis module has its own type)."""

    path: str
    search: str
    replace: str


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the one occurrence of `search` in `path` by `replace`; an empty `search`
    creates `path`, which must not exist yet."""

    path: str
    search: str
    replace: str


@dataclass(frozen=True, slots=True)
class DiffStats:
    """Size of a patch: files touched, lines added, lines removed."""

    files: int = 0
    added: int = 0
    removed: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.removed


@dataclass(frozen=True)
class GuardResult:
    """The verdict. When `ok`, `files` maps each relative path to its full new content and
    `diff` is the git-style unified diff; when refused both are empty (a refused patch may
    carry the very secret it was refused for) and `reasons` says why."""

    ok: bool
    reasons: list[str]
    diff: str
    files: dict[str, str]
    stats: DiffStats = field(default_factory=DiffStats)
    new_files: tuple[str, ...] = ()


def guard(
    edits: Sequence[EditLike],
    repo_root: Path,
    policy: Policy | None = None,
    *,
    secret_scan: SecretScan | None = None,
) -> GuardResult:
    """Check `edits` against the checkout at `repo_root` (ideally the worktree at the base
    commit) and return every reason to refuse them, or the resulting files and diff."""
    policy = policy or Policy()
    root = repo_root.resolve()
    reasons: list[str] = [] if edits else ["the analysis proposed no edits"]
    originals: dict[str, str | None] = {}
    current: dict[str, str | None] = {}
    unreadable: set[str] = set()
    for number, edit in enumerate(edits, start=1):
        rel, problem = check_path(edit.path, root, policy)
        if problem is None and rel in unreadable:
            continue  # reported with its first edit
        if problem is None and rel not in originals:
            text, problem = read_text(root / rel, rel)
            if problem is None:
                originals[rel] = current[rel] = text
            else:
                unreadable.add(rel)
        if problem is None:
            problem = _apply_one(rel, current, edit, number, policy)
        if problem is not None:
            reasons.append(problem)
    changed = {
        rel: new for rel, new in current.items() if new is not None and new != originals[rel]
    }
    if not changed and not reasons:
        reasons.append("the edits change nothing")
    diff, stats, added = _diff_all(changed, originals)
    reasons += _size_problems(stats, policy)
    reasons += _content_problems(changed, originals, added, policy, secret_scan)
    if reasons:
        return GuardResult(False, reasons, "", {}, stats)
    new_files = tuple(rel for rel in changed if originals[rel] is None)
    return GuardResult(True, [], diff, changed, stats, new_files)


def check_path(raw: str, root: Path, policy: Policy) -> tuple[str, str | None]:
    """The normalised relative path, and the reason it may not be edited (None if it may)."""
    shown = repr(raw[:120])
    if not raw or "\x00" in raw or "\\" in raw:
        return raw, f"{shown}: not a usable relative path"
    pure = PurePosixPath(raw)
    if pure.is_absolute() or raw.startswith("~") or (len(raw) > 1 and raw[1] == ":"):
        return raw, f"{shown}: absolute paths are not allowed"
    if ".." in pure.parts:
        return raw, f"{shown}: leaves the repository (..)"
    rel = pure.as_posix()
    full = root / rel
    resolved = full.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        return rel, f"{rel}: resolves outside the repository (symlink)"
    if full.is_symlink():
        return rel, f"{rel}: is a symlink"
    if full.exists() and not full.is_file():
        return rel, f"{rel}: is not a regular file"
    for candidate in (rel, resolved.relative_to(root).as_posix()):
        pattern = policy.denied_by(candidate)
        if pattern is not None:
            return rel, f"{rel}: protected path (matches {pattern!r})"
    return rel, None


def read_text(path: Path, rel: str) -> tuple[str | None, str | None]:
    """The file's text (None if it does not exist), and the reason it cannot be edited."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{rel}: cannot be read ({exc.strerror})"
    if len(data) > MAX_FILE_BYTES:
        return None, f"{rel}: larger than {MAX_FILE_BYTES} bytes"
    if b"\x00" in data:
        return None, f"{rel}: binary file"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"{rel}: not UTF-8 text (binary)"


def _apply_one(
    rel: str, current: dict[str, str | None], edit: EditLike, number: int, policy: Policy
) -> str | None:
    """Apply `edit` to current[rel] in place; the reason it does not apply, else None."""
    text = current[rel]
    if "\x00" in edit.replace:
        return f"{rel}: edit {number} adds a NUL byte (binary)"
    if text is None:
        if edit.search:
            return f"{rel}: edit {number} does not apply cleanly: the file does not exist"
        if not policy.allow_new_files:
            return f"{rel}: edit {number} creates a file, which the policy forbids"
        current[rel] = edit.replace
        return None
    if not edit.search:
        return f"{rel}: edit {number} has an empty search but the file already exists"
    search, replace = edit.search, edit.replace
    if "\r\n" in text and "\r\n" not in search:  # the model writes \n; keep the file's CRLF
        search, replace = search.replace("\n", "\r\n"), replace.replace("\n", "\r\n")
    found = occurrences(text, search)
    if found == 0:  # a whitespace slip: accepted when the block is still unique line by line
        loose = loose_replace(text, search, replace)
        if loose is not None:
            current[rel] = loose
            return None
    if found != 1:
        return f"{rel}: edit {number} does not apply cleanly: search text found {found} times"
    current[rel] = text.replace(search, replace, 1)
    return None


def loose_replace(text: str, search: str, replace: str) -> str | None:
    """`text` with the one run of lines equal to `search`'s once each line is stripped of
    surrounding whitespace (blank lines at the ends ignored) replaced by `replace`, re-indented
    by the difference between the file's indentation and the search's; None when no run or
    more than one matches."""
    wanted = [line.strip() for line in search.strip("\n").split("\n")]
    if not any(wanted):
        return None
    lines = text.split("\n")
    stripped = [line.strip() for line in lines]
    size = len(wanted)
    hits = [i for i in range(len(lines) - size + 1) if stripped[i : i + size] == wanted]
    if len(hits) != 1:
        return None
    start = hits[0]
    first = next(line for line in search.strip("\n").split("\n") if line.strip())
    have = next(line for line in lines[start : start + size] if line.strip())
    shift = _indent(have) - _indent(first)
    new = [_reindent(line, shift) for line in replace.strip("\n").split("\n")]
    return "\n".join(lines[:start] + new + lines[start + size :])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _reindent(line: str, shift: int) -> str:
    if not line.strip():
        return line.strip(" \t")
    if shift >= 0:
        return " " * shift + line
    return line[min(-shift, _indent(line)) :]


def occurrences(text: str, sub: str, limit: int = 2) -> int:
    """How many (possibly overlapping) times `sub` occurs in `text`, counting up to `limit`."""
    count, start = 0, text.find(sub)
    while start != -1 and count < limit:
        count += 1
        start = text.find(sub, start + 1)
    return count


def _diff_all(
    changed: dict[str, str], originals: dict[str, str | None]
) -> tuple[str, DiffStats, dict[str, str]]:
    """The combined diff, its stats, and the added lines of each file (for content rules)."""
    parts: list[str] = []
    added_text: dict[str, str] = {}
    added = removed = 0
    for rel, new in sorted(changed.items()):
        old = originals[rel]
        parts.append(unified_diff(rel, old, new))
        plus, minus = changed_lines(old or "", new)
        added_text[rel] = "".join(plus)
        added, removed = added + len(plus), removed + len(minus)
    return "".join(parts), DiffStats(len(changed), added, removed), added_text


def changed_lines(old: str, new: str) -> tuple[list[str], list[str]]:
    """(lines added, lines removed) going from `old` to `new`."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    plus: list[str] = []
    minus: list[str] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b).get_opcodes():
        if tag != "equal":
            minus += a[i1:i2]
            plus += b[j1:j2]
    return plus, minus


def unified_diff(rel: str, old: str | None, new: str) -> str:
    """A git-style unified diff of one file (`old` None: a new file), `git apply`-able."""
    header = f"diff --git a/{rel} b/{rel}\n"
    if old is None:
        header += "new file mode 100644\n"
    body = difflib.unified_diff(
        (old or "").splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile="/dev/null" if old is None else f"a/{rel}",
        tofile=f"b/{rel}",
    )
    lines = [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in body
    ]
    return header + "".join(lines)


def _size_problems(stats: DiffStats, policy: Policy) -> list[str]:
    reasons = []
    if stats.files > policy.max_files:
        reasons.append(f"changes {stats.files} files (limit {policy.max_files})")
    if stats.changed > policy.max_changed_lines:
        reasons.append(f"changes {stats.changed} lines (limit {policy.max_changed_lines})")
    return reasons


def _content_problems(
    changed: dict[str, str],
    originals: dict[str, str | None],
    added: dict[str, str],
    policy: Policy,
    secret_scan: SecretScan | None,
) -> list[str]:
    reasons: list[str] = []
    for rel, new in sorted(changed.items()):
        old = originals[rel] or ""
        reasons += content_problems(rel, old, new, added[rel], max_blob=policy.max_blob_chars)
        findings = secret_scan(added[rel]) if secret_scan is not None else []
        if findings:
            reasons.append(f"{rel}: adds {len(findings)} secret(s){_rule_names(findings)}")
    return reasons


def _rule_names(findings: list[Any]) -> str:
    """The rule ids of secret findings, never their values (the reason is stored and shown)."""
    names = {getattr(f, "kind", None) or getattr(f, "rule", None) for f in findings}
    names = {n for n in names if isinstance(n, str) and len(n) <= 60}
    return f" ({', '.join(sorted(names))})" if names else ""


def apply(result: GuardResult, root: Path) -> list[str]:
    """Write an accepted result's files under `root` (atomically, keeping file modes); return
    the relative paths written. Paths are re-checked: `root` may differ from the guarded one."""
    if not result.ok:
        raise ValueError("refusing to apply a patch the guard rejected")
    base = root.resolve()
    for rel in result.files:
        target = (base / rel).resolve()
        if not target.is_relative_to(base) or (base / rel).is_symlink():
            raise ValueError(f"{rel}: resolves outside {base}")
    for rel, text in result.files.items():
        _write_atomic(base / rel, text.encode("utf-8"))
    return list(result.files)


def _write_atomic(path: Path, data: bytes) -> None:
    """Replace an existing file via temp + rename (keeping its mode); create a new one
    directly, so the process umask sets its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        with path.open("xb") as handle:
            handle.write(data)
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
