"""Generic config validation: build frozen dataclasses from parsed TOML using their type hints.

Supported hints: str, int, float (ints accepted), bool, `Literal[...]`, `X | None`, `list[X]`,
`tuple[X, ...]`, `dict[str, X]`, nested dataclasses, and `Annotated[...]` with the markers below
(`Duration`, `AtLeast`, `OneOf`). Errors carry the key path so the caller can point at a file line.
"""

from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

T = TypeVar("T")
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Duration:
    """Marker: seconds, given as a number or a string such as "500ms", "30s", "5m", "1h", "2d"."""

    allow_zero: bool = False


@dataclass(frozen=True)
class AtLeast:
    """Marker: a number no smaller than `minimum`."""

    minimum: float


@dataclass(frozen=True)
class OneOf:
    """Marker: a string from a tuple defined elsewhere (Literal cannot take a runtime tuple)."""

    choices: tuple[str, ...]


Seconds = Annotated[float, Duration()]
SecondsOrZero = Annotated[float, Duration(allow_zero=True)]


class SchemaError(Exception):
    """A value that does not fit its schema, with the key path where it sits."""

    def __init__(self, path: KeyPath, message: str) -> None:
        super().__init__(f"{format_path(path)}: {message}" if path else message)
        self.path = path
        self.message = message


def format_path(path: KeyPath) -> str:
    """`("sources", 2, "quer")` -> `sources[2].quer`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
DURATION_HINT = '"500ms", "30s", "5m", "1h", "2d"'


def parse_duration(text: str) -> float:
    """Seconds in "500ms", "30s", "5m", "1h", "2d", "1h30m" or a bare number; ValueError if not."""
    cleaned = text.strip().lower()
    if _NUMBER.fullmatch(cleaned):
        return float(cleaned)
    if not _DURATION.fullmatch(cleaned):
        raise ValueError(
            f"invalid duration {text!r} (expected a number of seconds or {DURATION_HINT})"
        )
    return sum(float(n) * _UNITS[unit] for n, unit in _DURATION_PART.findall(cleaned))


def format_duration(seconds: float) -> str:
    """The shortest exact spelling ("1m", "250ms"), or the plain number when none is exact."""
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1]):
        count = seconds / size
        if seconds > 0 and count == int(count) and int(count) * size == seconds:
            return f"{int(count)}{unit}"
    return "0s" if seconds == 0 else repr(seconds)


_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")


def _masked(text: str) -> str:
    """A string as an error message may show it: a key pasted into the wrong field, or a URL
    with a password in it, must not be echoed to a terminal or a journal."""
    from watcher.fix.redact import default_redactor  # only when a message is being written

    return default_redactor().redact(_USERINFO.sub(r"\1***@", text))


def describe(value: Any) -> str:
    """A value as the user would have written it in TOML, for "got …" in messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(_masked(value), ensure_ascii=False)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return repr(value)


def build(cls: type[T], data: Any, path: KeyPath = ()) -> T:
    """Build dataclass `cls` from a table, rejecting unknown keys and applying defaults."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise SchemaError(path, f"expected a table, got {describe(data)}")
    hints = get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    _reject_unknown(data, fields, path)
    kwargs = {key: convert(hints[key], data[key], (*path, key)) for key in fields if key in data}
    for key, fld in fields.items():
        if key not in data and _is_required(fld):
            raise SchemaError(
                (*path, key), f"missing required key (expected {expected(hints[key])})"
            )
    return _construct(cls, kwargs, path)


def _reject_unknown(data: Mapping[str, Any], fields: Mapping[str, Any], path: KeyPath) -> None:
    for key in data:
        if key not in fields:
            valid = ", ".join(sorted(fields))
            raise SchemaError((*path, key), f"unknown key (expected one of: {valid})")


def _is_required(fld: dataclasses.Field[Any]) -> bool:
    missing = dataclasses.MISSING
    return fld.default is missing and fld.default_factory is missing


def _construct(cls: type[T], kwargs: dict[str, Any], path: KeyPath) -> T:
    # Cross-field checks live on the class: validate() (or __post_init__) raises
    # ValueError("key: message"), which we re-anchor at that key's path.
    try:
        instance = cls(**kwargs)
        check = getattr(instance, "validate", None)
        if callable(check):
            check()
    except ValueError as exc:
        raise _anchor(cls, str(exc), path) from None
    return instance


_KEYED_MESSAGE = re.compile(r"([A-Za-z_]\w*)((?:\[\d+\])*): (.*)", re.DOTALL)


def _anchor(cls: type, message: str, path: KeyPath) -> SchemaError:
    """Turn "windows[1]: must increase" into an error at path + ("windows", 1)."""
    names = {f.name for f in dataclasses.fields(cls)}
    match = _KEYED_MESSAGE.fullmatch(message)
    if not match or match.group(1) not in names:
        return SchemaError(path, message)
    indexes = tuple(int(i) for i in re.findall(r"\[(\d+)\]", match.group(2)))
    return SchemaError((*path, match.group(1), *indexes), match.group(3))


def convert(hint: Any, value: Any, path: KeyPath) -> Any:
    """Check `value` against `hint` and return it in the hinted Python type."""
    base, markers = _unwrap(hint)
    origin = get_origin(base)
    if origin in (Union, types.UnionType):
        return _convert_optional(base, markers, value, path)
    if origin is Literal:
        return _convert_choice(base, get_args(base), value, path)
    if origin in (list, tuple, Sequence):
        return _convert_sequence(base, value, path)
    if origin is dict:
        return _convert_mapping(base, value, path)
    if dataclasses.is_dataclass(base):
        return build(base, value, path)
    return _convert_scalar(base, markers, value, path)


def _unwrap(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    if get_origin(hint) is Annotated:
        base, *markers = get_args(hint)
        return base, tuple(markers)
    return hint, ()


def _convert_optional(hint: Any, markers: tuple[Any, ...], value: Any, path: KeyPath) -> Any:
    # TOML has no null, so a present value is always the non-None member.
    members = [arg for arg in get_args(hint) if arg is not type(None)]
    if value is None:
        return None
    inner = members[0] if len(members) == 1 else Union[tuple(members)]  # noqa: UP007
    return convert(Annotated[inner, *markers] if markers else inner, value, path)


def _convert_choice(hint: Any, choices: Sequence[Any], value: Any, path: KeyPath) -> Any:
    if value not in choices or isinstance(value, bool) != isinstance(choices[0], bool):
        raise SchemaError(path, f"expected {expected(hint)}, got {describe(value)}")
    return value


def _convert_sequence(hint: Any, value: Any, path: KeyPath) -> Any:
    if not isinstance(value, list | tuple):
        raise SchemaError(path, f"expected {expected(hint)}, got {describe(value)}")
    item_hint = get_args(hint)[0] if get_args(hint) else Any
    items = [convert(item_hint, item, (*path, i)) for i, item in enumerate(value)]
    return tuple(items) if get_origin(hint) is tuple else items


def _convert_mapping(hint: Any, value: Any, path: KeyPath) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise SchemaError(path, f"expected {expected(hint)}, got {describe(value)}")
    value_hint = get_args(hint)[1] if get_args(hint) else Any
    return {str(k): convert(value_hint, v, (*path, str(k))) for k, v in value.items()}


def _convert_scalar(base: Any, markers: tuple[Any, ...], value: Any, path: KeyPath) -> Any:
    if base is Any:
        return value
    hint = Annotated[base, *markers] if markers else base
    result = _coerce(base, markers, value)
    if result is _INVALID or not _within_bounds(markers, result):
        raise SchemaError(path, f"expected {expected(hint)}, got {describe(value)}")
    return result


_INVALID = object()


def _coerce(base: Any, markers: tuple[Any, ...], value: Any) -> Any:
    """`value` as `base`, or _INVALID; durations may arrive as strings."""
    if isinstance(value, bool):
        return value if base is bool else _INVALID
    if any(isinstance(m, Duration) for m in markers) and isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError:
            return _INVALID
    if base is float and isinstance(value, int | float):
        return float(value)
    return value if isinstance(value, base) else _INVALID


def _within_bounds(markers: tuple[Any, ...], value: Any) -> bool:
    for marker in markers:
        if isinstance(marker, Duration) and not (value > 0 or (marker.allow_zero and value == 0)):
            return False
        if isinstance(marker, AtLeast) and value < marker.minimum:
            return False
        if isinstance(marker, OneOf) and value not in marker.choices:
            return False
    return True


_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def expected(hint: Any) -> str:
    """What a hint accepts, in words: "an integer >= 10", "one of: json, text"."""
    base, markers = _unwrap(hint)
    origin = get_origin(base)
    if origin in (Union, types.UnionType):
        members = [arg for arg in get_args(base) if arg is not type(None)]
        return expected(Annotated[members[0], *markers] if markers else members[0])
    if origin is Literal:
        return "one of: " + ", ".join(describe(c).strip('"') for c in get_args(base))
    if origin in (list, tuple, Sequence):
        args = get_args(base)
        return f"an array of {_plural(expected(args[0]))}" if args else "an array"
    if origin is dict:
        return f"a table of {_plural(expected(get_args(base)[1]))}"
    if dataclasses.is_dataclass(base):
        return "a table"
    return _expected_scalar(base, markers)


def _expected_scalar(base: Any, markers: tuple[Any, ...]) -> str:
    for marker in markers:
        if isinstance(marker, Duration):
            bound = ">= 0" if marker.allow_zero else "> 0"
            return f"a number of seconds {bound} (or {DURATION_HINT})"
        if isinstance(marker, AtLeast):
            return f"{_NAMES.get(base, 'a number')} >= {marker.minimum:g}"
        if isinstance(marker, OneOf):
            return "one of: " + ", ".join(marker.choices)
    return _NAMES.get(base, getattr(base, "__name__", str(base)))


def _plural(phrase: str) -> str:
    # "an integer >= 10" -> "integers >= 10"; good enough for the few phrases above.
    if phrase == _NAMES[bool]:
        return "booleans"
    if phrase.startswith("a number of seconds "):
        return "durations (seconds " + phrase.removeprefix("a number of seconds ").replace(
            "(or ", "or "
        )
    for article in ("an ", "a "):
        if phrase.startswith(article):
            head, _, rest = phrase[len(article) :].partition(" ")
            return f"{head}s {rest}".strip()
    return phrase


def base_type(hint: Any) -> Any:
    """The plain type under Annotated and `X | None`; a Literal counts as str."""
    origin = get_origin(hint)
    if origin is Annotated:
        return base_type(get_args(hint)[0])
    if origin is Literal:
        return str
    members = [arg for arg in get_args(hint) if arg is not type(None)]
    if origin in (Union, types.UnionType) and len(members) == 1:
        return base_type(members[0])
    return hint


def is_scalar(hint: Any) -> bool:
    """Whether a key holds one str/int/float/bool (and so can be set from one string)."""
    return base_type(hint) in (str, int, float, bool)


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")
BOOL_WORDS = "true/false/1/0/yes/no"


def from_text(hint: Any, text: str) -> Any:
    """A string (env var, CLI flag) as the hinted type, for convert() to check; may ValueError."""
    base = base_type(hint)
    if base is bool:
        word = text.strip().lower()
        if word not in _TRUE + _FALSE:
            raise ValueError(f"expected {BOOL_WORDS}, got {describe(text)}")
        return word in _TRUE
    for kind in (int, float) if base in (int, float) else ():
        try:
            return kind(text)
        except ValueError:
            continue
    # Durations and unparseable numbers stay text: convert() accepts "5m" and words the error.
    return text
