"""A fake Anthropic Messages API on 127.0.0.1, driven by the real `anthropic` SDK via base_url.

`POST /v1/messages` answers with the documented shapes: a `message` object whose `content`
holds `tool_use` (or `text`) blocks, `stop_reason`, and `usage`; errors as
`{"type": "error", "error": {"type": …, "message": …}, "request_id": …}` with the status the
real API uses (400 invalid_request_error, 401 authentication_error, 429 rate_limit_error with
`retry-after`, 500 api_error, 529 overloaded_error). Every request is recorded (headers and JSON
body) so tests can assert on prompts and on what left the process.

Each test scripts the replies in order with `fake.script(...)`; when the script runs out the
fake answers 500 with `x-should-retry: false` so a missing reply fails fast and visibly.

Use the `anthropic_fake` fixture — `pytest_plugins = ["tests.fakes.anthropic_api"]` in the root
conftest, or `anthropic_fake = anthropic_api.anthropic_fake` in a test module — or
`async with AnthropicFake.running()`.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

API_KEY = "sk-ant-fake-test-key"
VERTEX_TOKEN = "ya29.fake-vertex-access-token"
# Bedrock: POST /model/{model}/invoke, SigV4-signed; Vertex: POST /projects/{p}/locations/{r}/
# publishers/anthropic/models/{model}:rawPredict with a bearer token. Both: the model in the
# path, not the body, and anthropic_version in the body.
BEDROCK_PATH = re.compile(r"^/model/(?P<model>[^/]+)/invoke$")
VERTEX_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<region>[^/]+)/publishers/anthropic/"
    r"models/(?P<model>[^/:]+):rawPredict$"
)
# The real API answers a forced tool_choice on these with 400 (per the Sonnet 5.5 migration guide)
DEFAULT_NO_FORCED_TOOL = frozenset({"claude-sonnet-5-5"})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or the raw text when it was not JSON
    at: float  # time.monotonic() on arrival

    @property
    def text(self) -> str:
        """The body as JSON text: handy for `secret not in request.text` assertions."""
        return self.body if isinstance(self.body, str) else json.dumps(self.body)


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer: a status, a JSON (or raw text) body and extra headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    raw: bool = False  # send `body` as-is (a str), not as JSON


# --- replies ---------------------------------------------------------------------------------


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    model: str = "",
    input_tokens: int = 1200,
    output_tokens: int = 300,
) -> Reply:
    """A 200 `message`; the model id is filled from the request when empty."""
    body = {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "service_tier": "standard",
        },
    }
    return Reply(200, body)


def tool_use(
    tool_input: Any,
    *,
    name: str = "report_fix",
    text: str | None = None,
    thinking: str | None = None,
    input_tokens: int = 1200,
    output_tokens: int = 300,
) -> Reply:
    """The model calls `name` with `tool_input` (any JSON value: tests send broken ones too).

    `thinking` and `text` add the blocks models with (adaptive) thinking put before the call.
    """
    block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": name}
    block["input"] = tool_input
    content: list[dict[str, Any]] = []
    if thinking:
        content.append({"type": "thinking", "thinking": thinking, "signature": "c2lnbmF0dXJl"})
    if text:
        content.append({"type": "text", "text": text})
    content.append(block)
    return message(
        content, stop_reason="tool_use", input_tokens=input_tokens, output_tokens=output_tokens
    )


def text_only(text: str = "I think the bug is in payments.py.", **usage: int) -> Reply:
    """An answer with no tool call at all."""
    return message([{"type": "text", "text": text}], stop_reason="end_turn", **usage)


def error(
    status: int,
    kind: str,
    text: str,
    *,
    retry_after: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An API error in the documented envelope."""
    extra = dict(headers or {})
    if retry_after is not None:
        extra["retry-after"] = f"{retry_after:g}"
    body = {
        "type": "error",
        "error": {"type": kind, "message": text},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }
    return Reply(status, body, extra)


def rate_limited(retry_after: float = 1) -> Reply:
    """429 rate_limit_error with a `retry-after` header (seconds)."""
    return error(
        429, "rate_limit_error", "Number of requests has exceeded your rate limit.",
        retry_after=retry_after,
    )  # fmt: skip


def overloaded(retry_after: float | None = None) -> Reply:
    """529 overloaded_error, as the API sends under load."""
    return error(529, "overloaded_error", "Overloaded", retry_after=retry_after)


def server_error(retry_after_ms: int | None = None) -> Reply:
    """500 api_error; `retry_after_ms` (the SDK reads `retry-after-ms`) keeps retried tests fast."""
    headers = {} if retry_after_ms is None else {"retry-after-ms": str(retry_after_ms)}
    return error(500, "api_error", "Internal server error", headers=headers)


def invalid_request(text: str) -> Reply:
    """400 invalid_request_error."""
    return error(400, "invalid_request_error", text)


def raw(status: int, text: str, content_type: str = "application/json") -> Reply:
    """A body sent verbatim, e.g. JSON that does not parse."""
    return Reply(status, text, {"content-type": content_type}, raw=True)


# --- canned report_fix inputs ----------------------------------------------------------------


def good_input(**overrides: Any) -> dict[str, Any]:
    """A well-formed report_fix input that patches the sample app's division by zero."""
    data: dict[str, Any] = {
        "summary": "Guard against an empty cart in payments.total",
        "root_cause": "total() divides by len(items), which is 0 for an empty cart.",
        "evidence": ["ZeroDivisionError at src/payments.py:12 in total", "42 occurrences in 1h"],
        "confidence": 0.82,
        "fixability": "patch",
        "edits": [
            {
                "path": "src/payments.py",
                "search": "    return sum(items) / len(items)\n",
                "replace": (
                    "    if not items:\n        return 0.0\n    return sum(items) / len(items)\n"
                ),
            }
        ],
        "test": {
            "description": "total([]) returns 0.0",
            "path": "tests/test_payments_empty.py",
            "content": "from src.payments import total\n\n\ndef test_empty():\n"
            "    assert total([]) == 0.0\n",
        },
        "risk": "Callers that relied on the exception now get 0.0.",
    }
    data.update(overrides)
    return data


def hostile_input() -> dict[str, Any]:
    """Edits aimed at CI config and outside the repository: the guard must refuse them."""
    return good_input(
        summary="Fix CI",
        edits=[
            {"path": ".github/workflows/ci.yml", "search": "run: pytest", "replace": "run: true"},
            {"path": "../../etc/passwd", "search": "root:x:0:0", "replace": "root::0:0"},
        ],
    )


MALFORMED_INPUTS: dict[str, Any] = {
    "missing_fields": {"summary": "x", "root_cause": "y"},
    "wrong_types": good_input(confidence="high", evidence="one string"),
    "confidence_out_of_range": good_input(confidence=7),
    "bad_fixability": good_input(fixability="maybe"),
    "edit_missing_search": good_input(edits=[{"path": "a.py", "replace": "x"}]),
    "score_out_of_range": good_input(fixability_score="1.7"),
    "not_an_object": "summary: fix it",
    "null": None,
    "edits_without_patch": good_input(fixability="root_cause_only"),
}


# --- the server ------------------------------------------------------------------------------


class AnthropicFake:
    """The fake API; `url` is its base URL, `requests` what it received."""

    def __init__(self, *, no_forced_tool: Iterable[str] = DEFAULT_NO_FORCED_TOOL) -> None:
        self.requests: list[RecordedRequest] = []
        self.no_forced_tool = set(no_forced_tool)
        self.url = ""
        self._script: list[Reply] = []
        self._repeat_last = False

    def script(self, *replies: Reply, repeat_last: bool = False) -> None:
        """Answer the next requests with `replies`, in order; `repeat_last` keeps the last one."""
        self._script = list(replies)
        self._repeat_last = repeat_last

    @property
    def messages(self) -> list[RecordedRequest]:
        """The recorded Messages requests (Anthropic, Bedrock or Vertex paths)."""
        return [r for r in self.requests if _provider(r.path) is not None]

    @classmethod
    @contextlib.asynccontextmanager
    async def running(cls, **kwargs: Any) -> AsyncIterator[AnthropicFake]:
        """Serve on 127.0.0.1 on a free port until the block ends."""
        fake = cls(**kwargs)
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", fake._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        fake.url = f"http://127.0.0.1:{port}"
        try:
            yield fake
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            body: Any = json.loads(text) if text else None
        except json.JSONDecodeError:
            body = text
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                {k.lower(): v for k, v in request.headers.items()},
                body,
                time.monotonic(),
            )
        )
        if request.method == "GET" and request.path.startswith("/v1/models/"):
            return self._respond(self._model(request), body)
        reply = self._check(request, body) or self._next()
        return self._respond(reply, body, request.path)

    def _model(self, request: web.Request) -> Reply:
        """GET /v1/models/{model_id}: the model object, 401 for a wrong key, 404 for an id
        that is not a Claude model (the fake knows every `claude-*` id)."""
        keys = {request.headers.get("x-api-key"), request.headers.get("authorization")}
        if not keys & {API_KEY, f"Bearer {API_KEY}"}:
            return error(401, "authentication_error", "invalid x-api-key")
        model = request.path.removeprefix("/v1/models/")
        if not model.startswith("claude-"):
            return error(404, "not_found_error", f"model: {model}")
        created = "2026-01-01T00:00:00Z"
        body = {"type": "model", "id": model, "display_name": model, "created_at": created}
        return Reply(200, body)

    def _check(self, request: web.Request, body: Any) -> Reply | None:
        """The validation the real API does before the model runs."""
        provider = _provider(request.path)
        if request.method != "POST" or provider is None:
            return error(404, "not_found_error", f"Not found: {request.method} {request.path}")
        if provider != "anthropic":
            return _check_cloud(provider, request, body)
        # the documented x-api-key header, or the bearer token anthropic 2.x sends for api_key
        keys = {request.headers.get("x-api-key"), request.headers.get("authorization")}
        if not keys & {API_KEY, f"Bearer {API_KEY}"}:
            return error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return invalid_request("anthropic-version: header is required")
        if not isinstance(body, dict):
            return invalid_request("body: expected a JSON object")
        for key in ("model", "max_tokens", "messages"):
            if key not in body:
                return invalid_request(f"{key}: Field required")
        choice = body.get("tool_choice") or {}
        if body["model"] in self.no_forced_tool and choice.get("type") in ("any", "tool"):
            return invalid_request(
                f"tool_choice: forced tool use is not supported for model {body['model']}"
            )
        return _check_tools(body)

    def _next(self) -> Reply:
        if not self._script:
            return Reply(
                500,
                {"type": "error", "error": {"type": "api_error", "message": "script exhausted"}},
                {"x-should-retry": "false"},
            )
        if len(self._script) == 1 and self._repeat_last:
            return self._script[0]
        return self._script.pop(0)

    def _respond(self, reply: Reply, body: Any, request_path: str = "") -> web.Response:
        headers = {"request-id": f"req_{uuid.uuid4().hex[:24]}", **reply.headers}
        if reply.raw:
            return web.Response(status=reply.status, text=reply.body, headers=headers)
        payload = reply.body
        if reply.status == 200 and isinstance(body, dict) and not payload.get("model"):
            payload = {**payload, "model": body.get("model") or _path_model(request_path)}
        return web.json_response(payload, status=reply.status, headers=headers)


def _check_tools(body: dict[str, Any]) -> Reply | None:
    """The API's tool-use checks: a forced tool must be defined, and every `tool_use` block of
    an assistant turn must be answered by a `tool_result` block in the very next (user) message
    — and no `tool_result` may answer an id the previous message did not call."""
    names = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
    choice = body.get("tool_choice") or {}
    if choice.get("type") == "tool" and choice.get("name") not in names:
        return invalid_request(f"tool_choice.name: tool {choice.get('name')!r} not found in tools")
    messages = body["messages"]
    for i, msg in enumerate(messages):
        called = _ids(msg, "tool_use", "id") if msg.get("role") == "assistant" else []
        nxt = messages[i + 1] if i + 1 < len(messages) else {}
        answered = _ids(nxt, "tool_result", "tool_use_id") if nxt.get("role") == "user" else []
        missing = [c for c in called if c not in answered]
        if called and missing:
            return invalid_request(
                f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                f"immediately after: {', '.join(missing)}. Each `tool_use` block must have a "
                "corresponding `tool_result` block in the next message."
            )
        prev = messages[i - 1] if i else {}
        asked = _ids(prev, "tool_use", "id") if prev.get("role") == "assistant" else []
        stray = [r for r in _ids(msg, "tool_result", "tool_use_id") if r not in asked]
        if msg.get("role") == "user" and stray:
            return invalid_request(
                f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: "
                f"{stray[0]}. Each `tool_result` block must have a corresponding `tool_use` "
                "block in the previous message."
            )
    return None


def _ids(message: Any, kind: str, key: str) -> list[str]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [str(b.get(key)) for b in content if isinstance(b, dict) and b.get("type") == kind]


def _provider(path: str) -> str | None:
    if path == "/v1/messages":
        return "anthropic"
    if BEDROCK_PATH.match(path):
        return "bedrock"
    if VERTEX_PATH.match(path):
        return "vertex"
    return None


def _path_model(path: str) -> str:
    match = BEDROCK_PATH.match(path) or VERTEX_PATH.match(path)
    return match.group("model") if match else ""


def _check_cloud(provider: str, request: web.Request, body: Any) -> Reply | None:
    """Bedrock and Vertex: their own auth, the model in the path, their anthropic_version."""
    auth = request.headers.get("authorization", "")
    if provider == "bedrock" and not auth.startswith("AWS4-HMAC-SHA256 Credential="):
        return error(403, "permission_error", "Missing Authentication Token")
    if provider == "vertex" and auth != f"Bearer {VERTEX_TOKEN}":
        return error(401, "authentication_error", "Request had invalid authentication")
    # the version goes in the body here, not a header (the SDK picks the value)
    if not isinstance(body, dict) or not body.get("anthropic_version"):
        return invalid_request("anthropic_version: Field required")
    if "model" in body:
        return invalid_request("model: Extra inputs are not permitted")
    for key in ("max_tokens", "messages"):
        if key not in body:
            return invalid_request(f"{key}: Field required")
    return None


@pytest.fixture
async def anthropic_fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AnthropicFake]:
    """A running fake; ANTHROPIC_API_KEY/ANTHROPIC_BASE_URL point the SDK at it."""
    async with AnthropicFake.running() as fake:
        monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.url)
        yield fake
