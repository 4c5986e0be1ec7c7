"""The OpenAPI 3.1 description of the HTTP API, served at /error-monitor/openapi.json.

Built from Python so shared shapes (the error object, the fix, the error body) are written once.
tests/test_http_openapi.py checks every route's real responses against these schemas, so a
change to `serialize` or `api` that is not made here too fails the tests.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from watcher import __version__
from watcher.group.lifecycle import STATES
from watcher.http.api import WINDOWS
from watcher.http.patterns_api import ACTOR_PATTERN, MAX_EPOCH, MAX_IGNORE_COUNT, UNTIL_PATTERN
from watcher.http.security import (
    DEFAULT_HOURS,
    DEFAULT_LIMIT,
    ID_PATTERN,
    MAX_BATCH,
    MAX_HOURS,
    MAX_INTERVAL,
    MAX_LIMIT,
)
from watcher.model import CATEGORIES, SEVERITIES

OPENAPI_PATH = "/error-monitor/openapi.json"
Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
OPT_STR: Schema = {"type": ["string", "null"]}
OPT_INT: Schema = {"type": ["integer", "null"]}
OPT_NUM: Schema = {"type": ["number", "null"]}
TIME: Schema = {"type": ["string", "null"], "format": "date-time"}


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict[str, Schema], *, extra: bool = False) -> Schema:
    """An object with every listed property required (the API always writes them all)."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": extra,
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def counts(values: Schema = INT) -> Schema:
    return {"type": "object", "additionalProperties": values}


# --- component schemas ---------------------------------------------------------------------------

FRAME = obj({"file": STR, "line": OPT_INT, "function": STR, "in_app": BOOL})
SAMPLE = obj({"timestamp": TIME, "source": STR, "line": INT, "text": STR})
ERROR_FIELDS: dict[str, Schema] = {
    "id": STR,
    "fingerprint": STR,
    "kind": {"type": "string", "enum": ["trace", "template"]},
    "timestamp": TIME,
    "error_type": OPT_STR,
    "message": STR,
    "template": STR,
    "category": {"type": "string", "examples": list(CATEGORIES)},
    "severity": {"type": "string", "enum": list(SEVERITIES)},
    "file": OPT_STR,
    "line": OPT_INT,
    "function": OPT_STR,
    "stack_trace": OPT_STR,
    "count": INT,
    "first_seen": TIME,
    "last_seen": TIME,
    "window_counts": counts(),
    "trend": {"type": "string", "enum": ["rising", "falling", "flat", "new"]},
    "status": STR,
    "state": {"type": "string", "enum": list(STATES)},
    "state_changed": TIME,
    "ignore_until": TIME,
    "ignore_count": OPT_INT,
    "tags": counts(counts()),
    "sources": counts(),
    "examples": array(STR),
    "fixable": BOOL,
    "suggested_fix": OPT_STR,
    "fix_id": OPT_STR,
    "fix_status": OPT_STR,
    "pr_url": OPT_STR,
}
ANALYSIS = obj(
    {
        "fix_id": STR,
        "status": STR,
        "summary": STR,
        "root_cause": STR,
        "evidence": array(STR),
        "risk": STR,
        "confidence": OPT_NUM,
        "pr_url": OPT_STR,
    }
)
FIX = obj(
    {
        "id": STR,
        "error_pattern_id": STR,
        "group_id": STR,
        "error_message": OPT_STR,
        "error_category": OPT_STR,
        "severity": OPT_STR,
        "analysis": STR,
        "proposed_fix": STR,
        "code_changes": counts(STR),
        "files_affected": array(STR),
        "generated_at": TIME,
        "pr_url": OPT_STR,
        "status": STR,
        "confidence": OPT_NUM,
        "diff": STR,
        "branch": OPT_STR,
        "error": OPT_STR,
        "details": {"type": "object"},
    }
)
SOURCE_STATUS: dict[str, Schema] = {
    "up": BOOL,
    "lines": INT,
    "error": OPT_STR,
    "lag_seconds": OPT_NUM,
}
SCHEMAS: dict[str, Schema] = {
    "ApiError": {
        "type": "object",
        "properties": {"error": STR, "detail": {"description": "any JSON value, or null"}},
        "required": ["error", "detail"],
    },
    "Frame": FRAME,
    "LinkedFrame": obj({**FRAME["properties"], "url": OPT_STR}),
    "Sample": SAMPLE,
    "ErrorObject": obj(ERROR_FIELDS),
    "PatternDetail": obj(
        {
            **ERROR_FIELDS,
            "activity": array(ref("Activity")),
            "samples": array(ref("Sample")),
            "frames": array(ref("LinkedFrame")),
            "fixes": array(ref("Fix")),
            "analysis": {"anyOf": [ref("Analysis"), {"type": "null"}]},
        }
    ),
    "Analysis": ANALYSIS,
    "Activity": obj(
        {
            "id": OPT_INT,
            "group_id": STR,
            "action": STR,
            "actor": STR,
            "at": TIME,
            "old_state": STR,
            "new_state": STR,
            "detail": {"type": "object"},
        }
    ),
    "Fix": FIX,
    "Source": obj(
        {
            "name": STR,
            **SOURCE_STATUS,
            "ready": BOOL,
            "error_events": INT,
            "problem": OPT_STR,
            "targets": array(obj({"path": STR, "offset": OPT_INT, "size": OPT_INT})),
            # a shared source on a shared state: "reading" here, or "standby" (another reads it)
            "shared": {"type": ["string", "null"], "enum": ["reading", "standby", None]},
        }
    ),
    "SourceStatus": obj(SOURCE_STATUS, extra=True),
}

# --- parameters ----------------------------------------------------------------------------------


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    param = {"name": name, "in": "query", "schema": schema, "description": description}
    return {**param, "required": True} if required else param


# what the API accepts as an id: an id outside it answers 400 (documented, so not a surprise)
ID = {"type": "string", "pattern": f"^{ID_PATTERN}$", "minLength": 1, "maxLength": 128}


def path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": ID, "description": description}


HOURS = query(
    "hours",
    {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_HOURS, "default": DEFAULT_HOURS},
    "Look-back in hours (groups last seen in it).",
)
LIMIT = query(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    "Most items.",
)
FLAG = {"type": "boolean", "default": False}

# --- operations ----------------------------------------------------------------------------------

READ_SECURITY: list[dict[str, list[str]]] = [{}, {"bearerAuth": []}]
WRITE_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]
ERROR_TEXT = {
    "400": "Invalid parameter.",
    "401": "Missing or wrong bearer token.",
    "403": "Refused: no token configured, or fix generation not allowed.",
    "404": "Not found.",
    "409": "The change cannot be made (e.g. a fingerprint the pattern does not own).",
    "413": "Request body too large.",
    "421": "The Host header does not name this server ([http] allowed_hosts).",
    "429": "Rate limited (see Retry-After): too many wrong tokens, or POSTs.",
    "500": "Internal error (logged; no trace in the body).",
}


def json_content(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


def operation(
    summary: str,
    body: Schema,
    *,
    params: list[Schema] | None = None,
    errors: tuple[str, ...] = (),
    write: bool = False,
    security: bool = True,
) -> Schema:
    """One operation: its 200 body, and the error statuses it can answer with."""
    codes = {"400", "421", "500", *errors}
    if security:
        codes |= {"401", "403", "429"}
    if write:
        codes |= {"413", "429"}
    responses: Schema = {"200": {"description": "OK", "content": json_content(body)}}
    for code in sorted(codes):
        content = json_content(ref("ApiError"))
        responses[code] = {"description": ERROR_TEXT[code], "content": content}
    op: Schema = {"summary": summary, "parameters": params or [], "responses": responses}
    if security:
        op["security"] = WRITE_SECURITY if write else READ_SECURITY
    return op


def error_list(key: str) -> Schema:
    return obj({"count": INT, "hours": NUM, key: array(ref("ErrorObject"))})


def health_body() -> Schema:
    return obj(
        {
            "status": {"type": "string", "enum": ["healthy", "degraded"]},
            "timestamp": TIME,
            "monitoring_enabled": BOOL,
            "error_patterns_tracked": INT,
            "sources_down": array(STR),
            "sources_not_ready": counts(STR),
        }
    )


def dashboard_body() -> Schema:
    summary = obj(
        {
            "total_patterns": INT,
            "critical_errors": INT,
            "fixable_errors": INT,
            "generated_fixes": INT,
            "fixes_by_status": counts(),
            "patterns_by_category": counts(),
        }
    )
    return obj(
        {
            "timestamp": TIME,
            "summary": summary,
            "recent_critical": array(ref("ErrorObject")),
            "recent_fixable": array(ref("ErrorObject")),
            "recent_fixes": array(ref("Fix")),
        }
    )


def generate_body() -> Schema:
    status = {"type": "string", "enum": ["processing", "success", "failed"]}
    return obj({"status": status, "message": STR, "fix": ref("Fix")})


def batch_body() -> Schema:
    refusal = obj({"error_id": STR, "detail": STR})
    return obj(
        {
            "status": {"type": "string", "enum": ["processing", "success"]},
            "message": STR,
            "count": INT,
            "fixes": array(ref("Fix")),
            "not_found": array(STR),
            "refused": array(refusal),
        }
    )


def monitor_body(required: dict[str, Schema], optional: dict[str, Schema]) -> Schema:
    """What the daemon returns may carry more keys; these are the ones clients rely on."""
    return {
        "type": "object",
        "properties": {**required, **optional},
        "required": list(required),
        "additionalProperties": True,
    }


def rates_body() -> Schema:
    window = {"type": "string", "enum": list(WINDOWS)}
    series = {"type": "object", "additionalProperties": array(INT)}
    return obj(
        {"window": window, "bucket_seconds": INT, "buckets": INT, "end": TIME, "series": series}
    )


def get(summary: str, body: Schema, **kw: Any) -> Schema:
    return {"get": operation(summary, body, **kw)}


def post(summary: str, body: Schema, **kw: Any) -> Schema:
    return {"post": operation(summary, body, write=True, **kw)}


def id_list(name: str, description: str) -> Schema:
    """A required query parameter holding a comma-separated list of 1 to MAX_BATCH ids."""
    one = rf"\s*{ID_PATTERN}\s*"
    pattern = f"^{one}(?:,{one}){{0,{MAX_BATCH - 1}}}$"
    return query(name, {"type": "string", "pattern": pattern}, description, required=True)


def api_paths() -> dict[str, Schema]:
    """The /error-monitor/ operations, keyed by path then method."""
    one_id = query("error_id", ID, "A pattern id (or, as before, an error type).", required=True)
    ids = id_list("error_ids", f"Comma-separated pattern ids (at most {MAX_BATCH}).")
    window = query("window", {"type": "string", "enum": list(WINDOWS)}, "The chart's span.")
    interval = query(
        "interval", {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_INTERVAL}, "Seconds."
    )
    recent = {"count": INT, "total": INT, "hours": NUM, "errors": array(ref("ErrorObject"))}
    patterns = {"total_patterns": INT, "patterns": array(ref("ErrorObject"))}
    scanned = {"errors_found": INT, "critical_errors": INT, "auto_fixes_started": INT}
    p = "/error-monitor"
    return {
        f"{p}/health": get("Monitor health", health_body()),
        f"{p}/errors/recent": get(
            "Patterns seen recently, newest first", obj(recent), params=[HOURS, LIMIT]
        ),
        f"{p}/errors/critical": get(
            "Critical and high-severity patterns seen recently",
            error_list("critical_errors"),
            params=[HOURS, LIMIT],
        ),
        f"{p}/errors/fixable": get(
            "Fixable patterns seen recently", error_list("fixable_errors"), params=[HOURS, LIMIT]
        ),
        f"{p}/errors/patterns": get("All patterns, worst first", obj(patterns), params=[LIMIT]),
        f"{p}/errors/patterns/{{group_id}}": get(
            "One pattern with samples, frames, fixes and analysis",
            obj({"pattern": ref("PatternDetail")}),
            params=[path_param("group_id", "The pattern id.")],
            errors=("404",),
        ),
        f"{p}/dashboard": get("Summary and the last hour's worst patterns", dashboard_body()),
        f"{p}/rates": get(
            "Error events per category per time bucket, oldest first",
            rates_body(),
            params=[window],
        ),
        f"{p}/sources": get("Each source's health", obj({"sources": array(ref("Source"))})),
        f"{p}/fixes/generate-for-error": post(
            "Generate a fix for one pattern",
            generate_body(),
            params=[one_id, query("create_pr", FLAG, "Open a pull request.")],
            errors=("404",),
        ),
        f"{p}/fixes/generate-batch": post(
            "Generate fixes for several patterns",
            batch_body(),
            params=[ids, query("create_prs", FLAG, "Open pull requests.")],
            errors=("404",),
        ),
        f"{p}/fixes/generated": get(
            "Fixes, newest first",
            obj({"total_fixes": INT, "fixes": array(ref("Fix"))}),
            params=[LIMIT],
        ),
        f"{p}/fixes/{{fix_id}}": get(
            "One fix",
            obj({"fix": ref("Fix")}),
            params=[path_param("fix_id", "The fix id.")],
            errors=("404",),
        ),
        f"{p}/monitor/start": post(
            "Turn on continuous monitoring",
            monitor_body({"status": STR, "interval_seconds": OPT_NUM, "message": STR}, {}),
            params=[interval],
        ),
        f"{p}/monitor/scan": post(
            "Scan a past window now",
            monitor_body({"status": STR, "hours": NUM}, scanned),
            params=[HOURS, query("auto_fix", FLAG, "Start fixes for fixable patterns.")],
        ),
    }


def lifecycle_paths() -> dict[str, Schema]:
    """The lifecycle POSTs (one per action) and the activity list."""
    p = "/error-monitor"
    group = path_param("group_id", "The pattern id (or a fingerprint it owns).")
    actor = query(
        "actor", {"type": "string", "pattern": ACTOR_PATTERN}, "Who (recorded as api:<actor>)."
    )
    changed = obj({"pattern": ref("ErrorObject"), "activity": array(ref("Activity"))})
    extra: dict[str, list[Schema]] = {
        "ignore": [
            query(
                "count",
                {"type": "integer", "minimum": 1, "maximum": MAX_IGNORE_COUNT},
                "Ignore until this many more events.",
            ),
            query("until", {"type": "string", "pattern": UNTIL_PATTERN}, "Ignore for (2h)."),
            query(
                "until_ts",
                {"type": "number", "minimum": 0, "maximum": MAX_EPOCH},
                "Ignore until this time (epoch seconds).",
            ),
        ],
        "merge": [id_list("ids", f"Comma-separated ids to fold in (at most {MAX_BATCH}).")],
        "split": [query("fingerprint", ID, "The fingerprint to split off.", required=True)],
    }
    summaries = {
        "resolve": "Resolve a pattern (a later event regresses it)",
        "ignore": "Ignore a pattern: forever, for N more events, or until a time",
        "reopen": "Reopen a resolved or ignored pattern",
        "merge": "Merge other patterns (and their fingerprints) into this one",
        "split": "Split a fingerprint off this pattern",
    }
    paths = {
        f"{p}/errors/patterns/{{group_id}}/{action}": post(
            summary, changed, params=[group, actor, *extra.get(action, [])], errors=("404", "409")
        )
        for action, summary in summaries.items()
    }
    listed = obj({"count": INT, "activity": array(ref("Activity"))})
    group_q = query("group_id", ID, "Only this pattern's changes.")
    paths[f"{p}/activity"] = get(
        "Lifecycle changes (who, what, when), newest first", listed, params=[group_q, LIMIT]
    )
    return paths


def probe(summary: str, responses: dict[str, tuple[str, Schema]]) -> Schema:
    """An operation outside the token: health probes, Prometheus, this document."""
    answers = {code: {"description": d, "content": c} for code, (d, c) in responses.items()}
    return {"get": {"summary": summary, "responses": answers}}


def probe_paths() -> dict[str, Schema]:
    """Health and metrics: never behind the token, for probes and Prometheus."""
    ready = json_content(
        {
            "type": "object",
            "properties": {
                "ready": BOOL,
                "sources": counts(ref("SourceStatus")),
                "failed": {"type": "object", "additionalProperties": {"type": "string"}},
                "store": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok", "degraded", "memory"]},
                        "error": {"type": ["string", "null"]},
                    },
                    "required": ["status"],
                },
            },
            "required": ["ready"],
            "additionalProperties": True,
        }
    )
    failed = (ERROR_TEXT["500"], json_content(ref("ApiError")))
    return {
        "/health/live": probe("Liveness", {"200": ("Alive", json_content(obj({"status": STR})))}),
        "/health/ready": probe(
            "Readiness, with each source's status",
            {"200": ("Ready", ready), "503": ("Not ready", ready), "500": failed},
        ),
        "/metrics": probe(
            "Prometheus exposition", {"200": ("Metrics", {"text/plain": {"schema": STR}})}
        ),
        OPENAPI_PATH: probe(
            "This document", {"200": ("OpenAPI 3.1", json_content({"type": "object"}))}
        ),
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    from watcher.http.fleet_api import fleet_paths

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "watcher",
            "version": __version__,
            "description": "Error patterns, fixes and health of a watcher daemon. Mutating routes "
            "need a bearer token; reads need it too when the daemon is so configured.",
        },
        "paths": {**api_paths(), **lifecycle_paths(), **fleet_paths(), **probe_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


def add_openapi_route(app: web.Application) -> None:
    """Serve the document (it holds no data, so it is public even when reads are protected)."""
    body = document()

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(body)

    app.router.add_get(OPENAPI_PATH, openapi, allow_head=False)
