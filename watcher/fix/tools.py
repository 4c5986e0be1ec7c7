"""Read-only tools the model may call while it analyses: read a file, grep the checkout.

The excerpts `context` picks are a guess; when the model needs a caller, a config value or a
definition they left out it asks with `read_file` or `grep` (the Messages API's tool use:
a `tool_use` block answered by a `tool_result` block). What it gets is bounded and confined:

- paths are relative to the checkout and resolved there; anything resolving outside it, under a
  tool directory (`.git`, `node_modules`, …), or looking like a secret (`.env*`, keys, `secrets/`)
  is refused, as are binary and oversized files;
- `grep` takes a fixed string, not a regex (no pattern the model writes can backtrack for ever);
- every result is cut to `max_bytes` and cleaned and redacted like the prompt's code;
- at most `max_calls` calls per analysis (repair rounds included); each is logged and recorded
  (`ToolCall`) with the fix, and every request they cause is charged to the token budget.

Blocking file I/O: `ToolSession.run` is called through `asyncio.to_thread`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import structlog

from watcher.fix.context import SKIP_DIRS, FileExcerpt, read_lines, walk
from watcher.fix.policy import HARD_DENYLIST, path_matches

log = structlog.get_logger("watcher.fix.tools")

READ_FILE = "read_file"
GREP = "grep"
MAX_GREP_HITS = 60
MAX_GREP_FILES = 20_000
# Never shown to the model, whatever it asks: where credentials live.
SECRET_FILES = (
    *HARD_DENYLIST, ".env*", "*.pem", "*.key", "*.p12", "*.pfx", "*.keystore", "*.jks",
    "id_rsa*", "id_ed25519*", "id_ecdsa*", "secrets/**", "**/secrets/**", ".netrc", ".npmrc",
    ".pypirc", "*.tfvars", "*.tfstate", "credentials*", ".git-credentials",
)  # fmt: skip

READ_FILE_TOOL: dict[str, Any] = {
    "name": READ_FILE,
    "description": (
        "Read lines of a file of the repository (read-only). Use it when the code shown does "
        "not include a definition, caller or value you need. Paths are relative to the "
        "repository root. The result has line numbers and ' | ' before each line."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "relative to the repository root"},
            "start_line": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1},
        },
        "required": ["path"],
        "additionalProperties": False,
    },
}
GREP_TOOL: dict[str, Any] = {
    "name": GREP,
    "description": (
        "Search the repository's files for a fixed string (not a regex), read-only. Returns "
        "'path:line: text' for each hit, at most 60. `path` limits the search to a directory."
    ),
    "input_schema": {
        "type": "object",
        "properties": {
            "text": {"type": "string", "minLength": 2},
            "path": {"type": "string", "description": "a directory relative to the root"},
        },
        "required": ["text"],
        "additionalProperties": False,
    },
}
TOOLS = (READ_FILE_TOOL, GREP_TOOL)
NAMES = frozenset({READ_FILE, GREP})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call as recorded with the fix: the tool, its arguments, what came back."""

    tool: str
    args: dict[str, Any]
    ok: bool
    bytes: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """For Fix.details["tool_calls"]."""
        return {"tool": self.tool, "args": self.args, "ok": self.ok, "bytes": self.bytes,
                "note": self.note}  # fmt: skip


class Refused(Exception):
    """The call cannot be answered; the message is the tool result the model gets."""


@dataclass
class ToolSession:
    """The tools of one analysis over the checkout at `root`; `calls` and `read` persist
    across its repair rounds (the cap is per fix, and a file read counts as shown)."""

    root: Path
    max_calls: int = 8
    max_bytes: int = 16_000
    clean: Callable[[str], str] = lambda text: text
    calls: list[ToolCall] = field(default_factory=list)
    read: set[str] = field(default_factory=set)  # paths the model read: it may edit them

    def __post_init__(self) -> None:
        self.root = self.root.resolve()

    @property
    def left(self) -> int:
        """Calls still allowed."""
        return max(self.max_calls - len(self.calls), 0)

    def run(self, name: str, args: Mapping[str, Any]) -> tuple[str, bool]:
        """(the tool result text, is_error) for one call; never raises."""
        shown = {k: str(v)[:200] for k, v in args.items()} if isinstance(args, Mapping) else {}
        shown = {k: self.clean(v) for k, v in shown.items()}
        try:
            if not self.left:
                raise Refused(f"tool call limit ({self.max_calls}) reached: answer with "
                              "report_fix now")  # fmt: skip
            if name not in NAMES or not isinstance(args, Mapping):
                raise Refused(f"unknown tool {name!r}: use read_file or grep")
            text = self._read(args) if name == READ_FILE else self._grep(args)
            text = self._cap(self.clean(text))
        except Refused as exc:
            self.calls.append(ToolCall(name, shown, False, 0, str(exc)))
            log.info("Model tool call refused.", tool=name, args=shown, reason=str(exc))
            return str(exc), True
        self.calls.append(ToolCall(name, shown, True, len(text.encode())))
        log.info("Model tool call.", tool=name, args=shown, bytes=len(text.encode()))
        return text, False

    # --- the tools ---------------------------------------------------------------------------

    def _read(self, args: Mapping[str, Any]) -> str:
        rel = self._path(args.get("path"))
        lines = read_lines(self.root, rel)
        if lines is None:
            raise Refused(f"{rel}: not a readable text file of the repository")
        start = _int(args.get("start_line"), 1)
        end = min(_int(args.get("end_line"), start + 199), len(lines))
        if start > len(lines) or end < start:
            raise Refused(f"{rel} has {len(lines)} lines; ask for start_line <= end_line")
        self.read.add(str(rel))
        excerpt = FileExcerpt(str(rel), start, end, "".join(lines[start - 1 : end]))
        return f"{rel} lines {start}-{end} of {len(lines)}:\n{excerpt.numbered()}"

    def _grep(self, args: Mapping[str, Any]) -> str:
        needle = args.get("text")
        if not isinstance(needle, str) or len(needle) < 2 or "\n" in needle:
            raise Refused("text: give a fixed string of at least 2 characters, one line")
        under = self._path(args.get("path"), directory=True) if args.get("path") else None
        hits: list[str] = []
        for count, rel in enumerate(walk(self.root)):
            if count >= MAX_GREP_FILES or len(hits) >= MAX_GREP_HITS:
                break
            if (under is not None and not rel.is_relative_to(under)) or _secret(rel):
                continue
            for number, line in enumerate(read_lines(self.root, rel) or (), start=1):
                if needle in line:
                    hits.append(f"{rel}:{number}: {line.rstrip()[:300]}")
                    if len(hits) >= MAX_GREP_HITS:
                        break
        return "\n".join(hits) if hits else f"no match for {needle!r}"

    def _path(self, value: Any, *, directory: bool = False) -> PurePosixPath:
        if not isinstance(value, str) or not value.strip():
            raise Refused("path: give a path relative to the repository root")
        rel = PurePosixPath(value.strip().replace("\\", "/").lstrip("/"))
        if ".." in rel.parts or any(part in SKIP_DIRS for part in rel.parts) or _secret(rel):
            raise Refused(f"{value}: not readable (outside the repository, a tool directory, "
                          "or a file that may hold secrets)")  # fmt: skip
        real = (self.root / rel).resolve()
        if not real.is_relative_to(self.root) or (directory and not real.is_dir()):
            kind = "directory" if directory else "file"
            raise Refused(f"{value}: not a {kind} of the repository")
        return rel

    def _cap(self, text: str) -> str:
        data = text.encode()
        if len(data) <= self.max_bytes:
            return text
        cut = data[: self.max_bytes].decode(errors="ignore")
        return cut + f"\n…[cut at {self.max_bytes} bytes; ask for fewer lines]"


def _secret(rel: PurePosixPath) -> bool:
    return any(path_matches(str(rel), pattern) for pattern in SECRET_FILES)


def _int(value: Any, default: int) -> int:
    usable = isinstance(value, int) and not isinstance(value, bool) and value > 0
    return value if usable else default
