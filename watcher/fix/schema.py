"""The `report_fix` tool the model answers through, and the checked result it turns into.

The model gets exactly one tool and it acts on nothing: calling it is how the model hands back
its analysis. The tool input is validated here by hand (jsonschema is not a dependency):
a missing key, a wrong type or a contradiction is a `SchemaViolation`, never a half-filled
`Analysis`; slips a careful reader would forgive (an extra key, "0.8" for 0.8) are accepted.

Edits are search/replace blocks, not unified diffs. An exact-match anchor either occurs once in
the file at the base commit and applies, or it does not and the edit fails cleanly; there are no
line numbers or hunk offsets for the model to get wrong, nothing is applied with fuzz, and the
guard can check each block (path, size, what it adds) without a diff parser.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

TOOL_NAME = "report_fix"
FIXABILITY = ("none", "root_cause_only", "patch")
Fixability = Literal["none", "root_cause_only", "patch"]

MAX_EDITS = 20
MAX_EVIDENCE = 20
MAX_SUMMARY = 200
MAX_TEXT = 20_000  # root cause, risk, one evidence item, a test description
MAX_CODE = 200_000  # one search/replace/test content string

_EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "path": {
            "type": "string",
            "description": "File to change, relative to the repository root, as shown in the code.",
        },
        "search": {
            "type": "string",
            "description": (
                "Exact text to replace, copied from the file without line-number prefixes; "
                "it must occur exactly once in the file. Include enough lines to be unique."
            ),
        },
        "replace": {"type": "string", "description": "The text that replaces `search`."},
        "rationale": {"type": "string", "description": "Why this edit (one sentence)."},
    },
    "required": ["path", "search", "replace"],
    "additionalProperties": False,
}

_TEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "description": {"type": "string", "description": "What the test checks."},
        "path": {"type": "string", "description": "New test file, relative to the repo root."},
        "content": {"type": "string", "description": "Full content of the new test file."},
    },
    "required": ["description"],
    "additionalProperties": False,
}

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {
            "type": "string",
            "description": f"One line (at most {MAX_SUMMARY} characters) for the PR title.",
        },
        "root_cause": {"type": "string", "description": "Why the error happens, in prose."},
        "evidence": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Facts from the logs and code that support the root cause.",
        },
        "confidence": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "How sure you are of the root cause and fix, from 0 to 1.",
        },
        "fixability_score": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": (
                "How likely a small code change in this repository fixes the error, from 0 to 1 "
                "(an operational cause such as an outage, a bad key or a locked database: low)."
            ),
        },
        "plan": {"type": "string", "description": "The fix in a few steps (no code)."},
        "fixability": {
            "type": "string",
            "enum": list(FIXABILITY),
            "description": (
                '"patch" only with a safe, minimal edit; "root_cause_only" when the cause is '
                'clear but no safe code change is; "none" when the cause is unclear.'
            ),
        },
        "edits": {
            "type": "array",
            "items": _EDIT_SCHEMA,
            "description": (
                'Search/replace blocks; empty unless fixability is "patch" (and empty when you '
                "are asked for the reproduction test only)."
            ),
        },
        "test": {
            "anyOf": [_TEST_SCHEMA, {"type": "null"}],
            "description": (
                "A reproduction test, as a new file: it must fail on the current code and pass "
                "once the fix is applied."
            ),
        },
        "risk": {"type": "string", "description": "What could go wrong with the change."},
    },
    "required": ["summary", "root_cause", "evidence", "confidence", "fixability", "edits", "risk"],
    "additionalProperties": False,
}

REPORT_FIX_TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": (
        "Report the analysis of the production error: root cause, evidence, confidence, and, "
        "when a safe minimal change exists, the exact search/replace edits. This tool performs "
        "no action; it only records your answer. Call it exactly once."
    ),
    "input_schema": INPUT_SCHEMA,
}


class SchemaViolation(ValueError):
    """The tool input does not match the report_fix schema; the message names the field."""


@dataclass(frozen=True, slots=True)
class Edit:
    """Replace the one occurrence of `search` in `path` by `replace`."""

    path: str
    search: str
    replace: str
    rationale: str = ""


@dataclass(frozen=True, slots=True)
class TestProposal:
    """A regression test: a description, and optionally a new file with its full content."""

    __test__ = False  # not a pytest class, despite the name

    description: str
    path: str | None = None
    content: str | None = None


@dataclass(frozen=True, slots=True)
class Analysis:
    """The model's checked answer for one group, plus what the request cost."""

    summary: str
    root_cause: str
    evidence: tuple[str, ...]
    confidence: float
    fixability: Fixability
    edits: tuple[Edit, ...]
    risk: str
    test: TestProposal | None = None
    fixability_score: float | None = None
    plan: str = ""
    model: str = ""
    message_id: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    tool_use_id: str = ""  # the report_fix call this came from: a repair round answers it
    raw_input: Any = None  # that call's input as sent, echoed back in the conversation

    @property
    def score(self) -> float:
        """The fixability score: the model's, else derived from its fixability and confidence."""
        if self.fixability_score is not None:
            return self.fixability_score
        return {"patch": self.confidence, "root_cause_only": 0.2}.get(self.fixability, 0.0)

    @property
    def tokens(self) -> int:
        """Input plus output tokens of the request that produced this analysis."""
        return self.input_tokens + self.output_tokens

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data, e.g. for `Fix.details`."""
        return asdict(self)


def parse_tool_input(data: object) -> Analysis:
    """A validated `Analysis` from the tool input; `SchemaViolation` naming the first problem.

    Small slips are accepted: unknown keys are ignored, a number may come as a numeric string.
    Edits with fixability other than "patch" are a contradiction; "patch" without edits is not
    (a reproduction-test round, or edits that come in the next round)."""
    obj = _object(data, "input", INPUT_SCHEMA)
    fixability = _enum(obj["fixability"], "fixability")
    edits = tuple(_edit(item, f"edits[{i}]") for i, item in enumerate(_list(obj, "edits")))
    if len(edits) > MAX_EDITS:
        raise SchemaViolation(f"edits: at most {MAX_EDITS} edits, got {len(edits)}")
    if edits and fixability != "patch":
        raise SchemaViolation('edits: must be empty unless fixability is "patch"')
    evidence = tuple(
        _text(item, f"evidence[{i}]", MAX_TEXT) for i, item in enumerate(_list(obj, "evidence"))
    )
    if len(evidence) > MAX_EVIDENCE:
        raise SchemaViolation(f"evidence: at most {MAX_EVIDENCE} items, got {len(evidence)}")
    return Analysis(
        summary=_summary(obj["summary"]),
        root_cause=_text(obj["root_cause"], "root_cause", MAX_TEXT, empty=False),
        evidence=evidence,
        confidence=_confidence(obj["confidence"]),
        fixability=fixability,
        edits=edits,
        risk=_text(obj["risk"], "risk", MAX_TEXT),
        test=_test(obj.get("test")),
        fixability_score=(
            None
            if obj.get("fixability_score") is None
            else _unit(obj["fixability_score"], "fixability_score")
        ),
        plan=_text(obj.get("plan") or "", "plan", MAX_TEXT),
    )


def _object(data: object, where: str, schema: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SchemaViolation(f"{where}: expected an object, got {_kind(data)}")
    missing = [key for key in schema["required"] if key not in data]
    if missing:
        raise SchemaViolation(f"{where}: missing required keys: {', '.join(missing)}")
    return {key: value for key, value in data.items() if key in schema["properties"]}


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj[key]
    if not isinstance(value, list):
        raise SchemaViolation(f"{key}: expected an array, got {_kind(value)}")
    return value


def _text(value: object, where: str, limit: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise SchemaViolation(f"{where}: expected a string, got {_kind(value)}")
    if len(value) > limit:
        raise SchemaViolation(f"{where}: longer than {limit} characters")
    if not empty and not value.strip():
        raise SchemaViolation(f"{where}: must not be empty")
    return value


def _summary(value: object) -> str:
    text = _text(value, "summary", MAX_SUMMARY, empty=False).strip()
    if "\n" in text or "\r" in text:
        raise SchemaViolation("summary: must be a single line")
    return text


def _confidence(value: object) -> float:
    return _unit(value, "confidence")


def _unit(value: object, where: str) -> float:
    """A number from 0 to 1; "0.8" is taken as 0.8 (a common slip), true/false is not."""
    if isinstance(value, str):
        try:
            value = float(value.strip().rstrip("%")) / (100 if value.strip().endswith("%") else 1)
        except ValueError:
            raise SchemaViolation(f"{where}: expected a number, got a string") from None
    # bool is an int subclass; true/false is not a number here
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaViolation(f"{where}: expected a number, got {_kind(value)}")
    if not math.isfinite(value) or not 0 <= value <= 1:
        raise SchemaViolation(f"{where}: expected a number from 0 to 1, got {value!r}")
    return float(value)


def _enum(value: object, where: str) -> Fixability:
    if not isinstance(value, str) or value not in FIXABILITY:
        raise SchemaViolation(f"{where}: expected one of {', '.join(FIXABILITY)}, got {value!r}")
    return value  # type: ignore[return-value]


def _edit(item: object, where: str) -> Edit:
    obj = _object(item, where, _EDIT_SCHEMA)
    return Edit(
        path=_text(obj["path"], f"{where}.path", 1000, empty=False),
        search=_text(obj["search"], f"{where}.search", MAX_CODE, empty=False),
        replace=_text(obj["replace"], f"{where}.replace", MAX_CODE),
        rationale=_text(obj.get("rationale") or "", f"{where}.rationale", MAX_TEXT),
    )


def _test(value: object) -> TestProposal | None:
    if value is None:
        return None
    obj = _object(value, "test", _TEST_SCHEMA)
    path, content = obj.get("path"), obj.get("content")
    if (path is None) != (content is None):
        raise SchemaViolation("test: path and content go together")
    return TestProposal(
        description=_text(obj["description"], "test.description", MAX_TEXT, empty=False),
        path=None if path is None else _text(path, "test.path", 1000, empty=False),
        content=None if content is None else _text(content, "test.content", MAX_CODE),
    )


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
