"""The OpenAPI document: well formed, naming every route, and true of every real response.

jsonschema is not a dependency, so a small checker covers the subset the document uses; a test
pins that subset, so a keyword the checker would ignore cannot slip into the document.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from watcher.http.openapi import OPENAPI_PATH, document
from watcher.http.view import InMemoryView
from watcher.model import ErrorGroup

from .test_http_api import AUTH, start_client

Schema = dict[str, Any]
CHECKED = {"type", "properties", "required", "items", "enum", "additionalProperties", "$ref"}
CHECKED |= {"anyOf", "minimum", "maximum", "exclusiveMinimum", "pattern", "minLength", "maxLength"}
ANNOTATIONS = {"description", "format", "examples", "default"}
TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}

DOC = document()


# --- the checker ---------------------------------------------------------------------------------


def resolve(schema: Schema) -> Schema:
    while "$ref" in schema:
        node: Any = DOC
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, TYPES[name])


def problems(value: Any, schema: Schema, where: str = "$") -> list[str]:
    """Every way `value` breaks `schema` (empty when it conforms)."""
    schema = resolve(schema)
    if "anyOf" in schema:
        if all(problems(value, option, where) for option in schema["anyOf"]):
            return [f"{where}: matches none of anyOf"]
        return []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        if not any(is_type(value, name) for name in names):
            return [f"{where}: expected {names}, got {type(value).__name__} {value!r:.60}"]
    found: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        found += object_problems(value, schema, where)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{i}]")
    if is_type(value, "number"):
        found += bound_problems(value, schema, where)
    if isinstance(value, str):
        found += string_problems(value, schema, where)
    return found


def string_problems(value: str, schema: Schema, where: str) -> list[str]:
    """pattern (a search, as JSON Schema has it), minLength and maxLength."""
    found = []
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{where}: {value!r:.60} does not match {schema['pattern']}")
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
        found.append(f"{where}: length {len(value)} outside the declared bounds")
    return found


def object_problems(value: dict[str, Any], schema: Schema, where: str) -> list[str]:
    found = [f"{where}: missing {key!r}" for key in schema.get("required", []) if key not in value]
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            found += problems(item, properties[key], f"{where}.{key}")
        elif extra is False:
            found.append(f"{where}: unexpected {key!r}")
        elif isinstance(extra, dict):
            found += problems(item, extra, f"{where}.{key}")
    return found


def bound_problems(value: float, schema: Schema, where: str) -> list[str]:
    found = []
    if "minimum" in schema and value < schema["minimum"]:
        found.append(f"{where}: {value} < minimum")
    if "maximum" in schema and value > schema["maximum"]:
        found.append(f"{where}: {value} > maximum")
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        found.append(f"{where}: {value} <= exclusiveMinimum")
    return found


def operation_for(method: str, path: str) -> tuple[str, Schema]:
    """The documented template and operation a concrete path is served by (literals first)."""
    templates = sorted(DOC["paths"], key=lambda t: t.count("{"))
    for template in templates:
        pattern = re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path) and method.lower() in DOC["paths"][template]:
            return template, DOC["paths"][template][method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def assert_conforms(method: str, path: str, status: int, content_type: str, body: Any) -> str:
    """The response status is documented for the operation and the body fits its schema."""
    template, op = operation_for(method, path.split("?")[0])
    responses = op["responses"]
    assert str(status) in responses, f"{method} {template}: {status} not documented"
    content = responses[str(status)]["content"]
    assert content_type in content, f"{method} {template} {status}: {content_type} undocumented"
    found = problems(body, content[content_type]["schema"])
    assert not found, f"{method} {path} {status}: {found}"
    return f"{method.upper()} {template} {status}"


# --- the checker itself --------------------------------------------------------------------------


def test_checker_finds_violations() -> None:
    """The checker reports wrong types, missing/unexpected keys, enum and bound violations."""
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}, "s": {"enum": ["a"]}},
        "required": ["n"],
        "additionalProperties": False,
    }
    assert problems({"n": 1, "s": "a"}, schema) == []
    assert problems({"n": True}, schema) == ["$.n: expected ['integer'], got bool True"]
    assert problems({"n": 0, "s": "b", "x": 1}, schema) == [
        "$.n: 0 < minimum",
        "$.s: 'b' not in ['a']",
        "$: unexpected 'x'",
    ]
    assert problems({}, schema) == ["$: missing 'n'"]
    assert problems([1, "x"], {"type": "array", "items": {"type": "number"}}) != []
    assert problems(None, {"anyOf": [{"type": "string"}, {"type": "null"}]}) == []


# --- the document --------------------------------------------------------------------------------


def schemas_in(node: Any) -> Iterator[Schema]:
    """Every schema object in the document (under "schema", components, and nested)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema" or (key == "schemas" and isinstance(value, dict)):
                yield from (value.values() if key == "schemas" else [value])
            yield from schemas_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from schemas_in(item)


def test_document_uses_only_checked_keywords() -> None:
    """Every schema keyword in the document is one the checker enforces or a pure annotation."""
    for schema in schemas_in(DOC):
        nested = [schema, *schema.get("properties", {}).values()]
        for part in nested:
            unknown = set(part) - CHECKED - ANNOTATIONS
            assert not unknown, f"unchecked keywords {unknown} in {part}"


def test_document_is_openapi_31_with_resolvable_refs() -> None:
    """openapi 3.1.0, every $ref resolves, and every path parameter is declared."""
    assert DOC["openapi"] == "3.1.0"
    refs = re.findall(r"'\$ref': '([^']+)'", repr(DOC))
    for target in refs:
        resolve({"$ref": target})
    for template, item in DOC["paths"].items():
        for op in item.values():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"{(\w+)}", template)), template
            assert "200" in op["responses"]


async def test_every_route_is_documented_and_every_operation_is_routed() -> None:
    """The app's routes (but the page and its assets) and the document's operations coincide."""
    client = await start_client()
    try:
        routed = {
            (route.method.lower(), route.resource.canonical)
            for route in client.app.router.routes()
            if route.method != "HEAD" and route.resource is not None
        }
    finally:
        await client.close()
    routed -= {("get", "/"), ("get", "/static")}
    documented = {(m, p) for p, item in DOC["paths"].items() for m in item}
    assert routed == documented


# --- real responses ------------------------------------------------------------------------------

GROUP = "a1b2c3d4e5f6"
OK_REQUESTS = [
    ("GET", "/error-monitor/health"),
    ("GET", "/error-monitor/errors/recent?hours=24&limit=5"),
    ("GET", "/error-monitor/errors/critical?hours=1"),
    ("GET", "/error-monitor/errors/fixable?hours=720"),
    ("GET", "/error-monitor/errors/patterns"),
    ("GET", f"/error-monitor/errors/patterns/{GROUP}"),
    ("GET", "/error-monitor/errors/patterns/0badc0ffee00"),
    ("GET", "/error-monitor/dashboard"),
    ("GET", "/error-monitor/rates?window=1d"),
    ("GET", "/error-monitor/sources"),
    ("GET", "/error-monitor/fleet"),
    ("POST", f"/error-monitor/fixes/generate-for-error?error_id={GROUP}&create_pr=true"),
    ("POST", f"/error-monitor/fixes/generate-batch?error_ids={GROUP},nope"),
    ("GET", "/error-monitor/fixes/generated"),
    ("GET", "/error-monitor/fixes/fix-db-1"),
    ("POST", "/error-monitor/monitor/start?interval=120"),
    ("POST", "/error-monitor/monitor/scan?hours=3&auto_fix=true"),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/resolve?actor=ann"),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/ignore?count=5&until=2h"),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/reopen"),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/merge?ids=feedfacecafe"),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/split?fingerprint=feedfacecafe"),
    ("GET", f"/error-monitor/activity?group_id={GROUP}&limit=10"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("GET", "/metrics"),
    ("GET", OPENAPI_PATH),
]
# Requests whose status is fixed by their parameters, whatever the view holds.
ERROR_REQUESTS = [
    ("GET", "/error-monitor/errors/recent?hours=0", 400),
    ("GET", "/error-monitor/errors/patterns/unknown", 404),
    ("GET", "/error-monitor/fixes/unknown", 404),
    ("POST", "/error-monitor/fixes/generate-for-error?error_id=unknown", 404),
    ("POST", "/error-monitor/fixes/generate-batch?error_ids=a,b", 404),
    ("POST", "/error-monitor/monitor/scan?hours=-2", 400),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/split?fingerprint=notmine", 409),
    ("POST", f"/error-monitor/errors/patterns/{GROUP}/ignore?count=0", 400),
    ("POST", "/error-monitor/errors/patterns/unknown/resolve", 404),
]


async def record(client: TestClient, method: str, path: str, **kw: Any) -> tuple[int, str]:
    response = await client.request(method, path, **kw)
    content_type = response.content_type
    body = await (response.json() if content_type == "application/json" else response.text())
    return response.status, assert_conforms(method, path, response.status, content_type, body)


class ExplodingView(InMemoryView):
    """Every read fails, as a view whose store broke would."""

    def groups(self, *, since: float | None = None) -> list[ErrorGroup]:
        raise RuntimeError("boom")

    def group(self, group_id: str) -> ErrorGroup | None:
        raise RuntimeError("boom")

    def fixes(self, *, group_id: str | None = None) -> list[Any]:
        raise RuntimeError("boom")

    def fix(self, fix_id: str) -> Any:
        raise RuntimeError("boom")

    def sources(self) -> dict[str, dict[str, Any]]:
        raise RuntimeError("boom")

    def error_rate(self, *, bucket_seconds: int, buckets: int) -> dict[str, list[int]]:
        raise RuntimeError("boom")

    def fleet(self) -> dict[str, Any]:
        raise RuntimeError("boom")

    async def start_monitor(self, *, interval: float | None) -> dict[str, Any]:
        raise RuntimeError("boom")

    async def scan(self, *, hours: float, auto_fix: bool) -> dict[str, Any]:
        raise RuntimeError("boom")

    def activity(self, *, group_id: str | None = None, limit: int = 100) -> list[Any]:
        raise RuntimeError("boom")

    async def change(self, group_id: str, action: str, actor: str, **params: Any) -> Any:
        raise RuntimeError("boom")


@pytest.fixture
async def clients() -> AsyncIterator[list[TestClient]]:
    """A list the test appends its started clients to; all are closed afterwards."""
    opened: list[TestClient] = []
    yield opened
    for client in opened:
        await client.close()


async def test_every_operation_answers_as_documented(clients: list[TestClient]) -> None:
    """Each operation's 200, and 400/401/403/404/413/429/500 where they apply, fit the schemas."""
    seen: set[str] = set()
    ok = await start_client(protect_reads=True, post_burst=30)  # more POSTs than the default
    clients.append(ok)
    for method, path in OK_REQUESTS:
        status, key = await record(ok, method, path, headers=AUTH)
        assert status == 200, key
        seen.add(key)
    for method, path, expected in ERROR_REQUESTS:
        status, key = await record(ok, method, path, headers=AUTH)
        assert status == expected, key
        seen.add(key)
    api_ops = [
        (m, p) for m, p in OK_REQUESTS if p.startswith("/error-monitor/") and "openapi" not in p
    ]
    seen |= await statuses_without_auth(clients, api_ops)
    seen |= await statuses_of_failures(clients, api_ops)
    seen |= await statuses_of_limits(clients)
    for template, item in DOC["paths"].items():
        for method in item:
            assert f"{method.upper()} {template} 200" in seen
            if template.startswith("/error-monitor/") and template != OPENAPI_PATH:
                for code in ("401", "403", "500"):
                    assert f"{method.upper()} {template} {code}" in seen


async def statuses_without_auth(clients: list[TestClient], ops: list[tuple[str, str]]) -> set[str]:
    """401 without a token when reads are protected; 403 when no token is configured."""
    seen = set()
    strict = await start_client(protect_reads=True)
    unset = await start_client(token=None, protect_reads=True)
    clients += [strict, unset]
    for client, expected in ((strict, 401), (unset, 403)):
        for method, path in ops:
            status, key = await record(client, method, path)
            assert status == expected, key
            seen.add(key)
    return seen


async def statuses_of_failures(clients: list[TestClient], ops: list[tuple[str, str]]) -> set[str]:
    """Every operation turns a failing view into a documented 500 error body."""
    broken = await start_client(ExplodingView())
    clients.append(broken)
    seen = set()
    for method, path in ops:
        status, key = await record(broken, method, path, headers=AUTH)
        assert status == 500, key
        seen.add(key)
    return seen


async def statuses_of_limits(clients: list[TestClient]) -> set[str]:
    """413 for a large body and 429 past the burst, on every mutating operation."""
    seen = set()
    posts = [p for m, p in OK_REQUESTS if m == "POST"]
    for path in posts:
        client = await start_client(max_body_bytes=16, post_burst=1)
        clients.append(client)
        status, key = await record(client, "POST", path, headers=AUTH, data=b"x" * 64)
        assert status == 413, key
        seen.add(key)
        await record(client, "POST", path, headers=AUTH)  # spends the token's burst of 1
        status, key = await record(client, "POST", path, headers=AUTH)
        assert status == 429, key
        seen.add(key)
    return seen
