"""TOML text helpers for the config: where each key sits in a file, and writing TOML back.

tomllib reports no positions, so `key_lines` scans the text itself: it tracks table headers
(`[x]`, `[[x]]` with their occurrence index) and the `key =` lines inside them, skipping the
insides of multi-line strings and arrays. The stdlib has no TOML writer, so `dumps` is a small one
for the plain data the config holds.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from watcher.configschema import Duration, KeyPath, format_duration

_PIECE = re.compile(r'\s*([A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')\s*')
_HEADER = re.compile(r"\s*(\[\[?)([^\[\]]+)\]\]?\s*(?:#.*)?")
_KEY = re.compile(r'\s*((?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|\'[^\']*\')(?:\s*\.\s*[^=]+?)?)\s*=')
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def split_dotted(text: str) -> tuple[str, ...]:
    """`a."b.c".d` -> ("a", "b.c", "d")."""
    return tuple(_unquote(m.group(1)) for m in _PIECE.finditer(text))


def _unquote(piece: str) -> str:
    if piece.startswith('"'):
        return str(json.loads(piece))
    return piece.strip("'")


@dataclass
class _Scan:
    """Where the scanner is: the current table, open multi-line string, bracket depth."""

    table: KeyPath = ()
    quote: str | None = None
    depth: int = 0


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every table header and key path in `text` to its 1-based line number."""
    lines: dict[KeyPath, int] = {}
    arrays: dict[KeyPath, int] = {}
    scan = _Scan()
    for number, line in enumerate(text.splitlines(), start=1):
        if scan.quote is None and scan.depth == 0:
            _record(line, number, scan, arrays, lines)
        _advance(line, scan)
    return lines


def _record(
    line: str, number: int, scan: _Scan, arrays: dict[KeyPath, int], lines: dict[KeyPath, int]
) -> None:
    header = _HEADER.fullmatch(line)
    if header:
        scan.table = _table_path(split_dotted(header.group(2)), header.group(1) == "[[", arrays)
        lines.setdefault(scan.table, number)
        return
    key = _KEY.match(line)
    if key:
        lines.setdefault((*scan.table, *split_dotted(key.group(1))), number)


def _table_path(parts: tuple[str, ...], is_array: bool, arrays: dict[KeyPath, int]) -> KeyPath:
    """Resolve a header to a key path, inserting the current index of enclosing arrays."""
    path: KeyPath = ()
    for part in parts[:-1]:
        path = (*path, part)
        if path in arrays:
            path = (*path, arrays[path] - 1)
    path = (*path, parts[-1])
    if not is_array:
        return path
    arrays[path] = arrays.get(path, 0) + 1
    return (*path, arrays[path] - 1)


def _advance(line: str, scan: _Scan) -> None:
    """Update open strings and bracket depth past one line (comments and strings skipped)."""
    i = 0
    while i < len(line):
        if scan.quote is not None:
            end = line.find(scan.quote, i)
            if end < 0:
                return
            scan.quote, i = None, end + 3
            continue
        if line.startswith(('"""', "'''"), i):
            scan.quote, i = line[i : i + 3], i + 3
            continue
        char = line[i]
        if char == "#":
            return
        if char in "\"'":
            i = _string_end(line, i)
            continue
        scan.depth += (char in "[{") - (char in "]}")
        i += 1


def _string_end(line: str, start: int) -> int:
    quote, i = line[start], start + 1
    while i < len(line) and line[i] != quote:
        i += 2 if quote == '"' and line[i] == "\\" else 1
    return i + 1


def locate(lines: Mapping[KeyPath, int], path: KeyPath) -> int | None:
    """The line of `path`, else of its nearest enclosing key or table, else None."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


_SECRET_WORDS = ("token", "secret", "password", "passwd", "credential", "key")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
MASK = "***"


def is_secret_key(name: str) -> bool:
    """Whether a key's value is a secret: *_env keys hold a variable name, max_* are limits."""
    lowered = name.lower()
    if lowered.endswith("_env") or lowered.startswith("max_"):
        return False
    return any(word in lowered for word in _SECRET_WORDS)


def to_document(value: Any) -> Any:
    """Dataclasses (or tuples of them) as TOML-ready data: durations as "5m", secrets masked."""
    return _as_data(None, value)


def _plain(obj: Any) -> dict[str, Any]:
    """A dataclass as TOML-ready data: durations spelled "5m", secrets masked."""
    hints = get_type_hints(type(obj), include_extras=True)
    out: dict[str, Any] = {}
    for fld in dataclasses.fields(obj):
        if fld.init:
            # a field marked {"mask": "path"} is a URL whose path is the credential, as webhooks'
            key = "webhooks" if fld.metadata.get("mask") == "path" else fld.name
            out[fld.name] = _masked(key, _as_data(hints.get(fld.name), getattr(obj, fld.name)))
    return out


def _as_data(hint: Any, value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(value)
    if isinstance(value, list | tuple):
        item_hint = get_args(_unannotated(hint))[0] if get_args(_unannotated(hint)) else None
        return [_as_data(item_hint, item) for item in value]
    if _is_duration(hint) and isinstance(value, int | float) and not isinstance(value, bool):
        spelled = format_duration(value)
        return spelled if spelled[-1].isalpha() else value
    return value


def _unannotated(hint: Any) -> Any:
    return get_args(hint)[0] if get_origin(hint) is Annotated else hint


def _is_duration(hint: Any) -> bool:
    markers = get_args(hint)[1:] if get_origin(hint) is Annotated else ()
    return any(isinstance(m, Duration) for m in markers)


def _masked(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(key, item) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if is_secret_key(key):
        return MASK
    if key == "webhooks":
        # A Slack-style webhook URL is itself the credential: keep only scheme and host (and
        # not a user:password@ in front of it).
        value = _USERINFO.sub(rf"\1{MASK}@", value)
        return re.sub(r"^((?:slack\+|json\+)?https?://[^/]+)/.+$", rf"\1/{MASK}", value)
    return _USERINFO.sub(rf"\1{MASK}@", value)


def dumps(document: Mapping[str, Any]) -> str:
    """TOML text for nested dicts/lists of str, int, float, bool (None values are left out)."""
    out: list[str] = []
    _write_table(out, (), document)
    return "\n".join(out).strip() + "\n"


def _write_table(out: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    nested = {k: v for k, v in table.items() if _is_table(v, path) or _is_table_array(v, path)}
    for key, value in table.items():
        if key not in nested and value is not None:
            out.append(f"{_key(key)} = {_value(value)}")
    for key, value in nested.items():
        child = (*path, key)
        for item in value if isinstance(value, list) else [value]:
            out.extend(["", _header(child, isinstance(value, list))])
            _write_table(out, child, item)


def _is_table(value: Any, path: tuple[str, ...]) -> bool:
    # Only top-level sections become [tables]; deeper mappings read better inline.
    return isinstance(value, Mapping) and not path


def _is_table_array(value: Any, path: tuple[str, ...]) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _header(path: tuple[str, ...], is_array: bool) -> str:
    name = ".".join(_key(p) for p in path)
    return f"[[{name}]]" if is_array else f"[{name}]"


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        items = ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items() if v is not None)
        return "{" + (f" {items} " if items else "") + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return _string(str(value))


def _float(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _string(text: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")
