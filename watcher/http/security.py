"""What a request may do, and how a refusal looks.

- Mutating requests (anything but GET/HEAD/OPTIONS) need `Authorization: Bearer <token>`; with no
  token configured they are refused outright (403), so a daemon started without one can be
  looked at but never made to open pull requests. Reads under /error-monitor/ need the token too
  when `protect_reads` is set.
- The Host header must name this server (`allowed_hosts`): a page on another site whose name
  was made to resolve to 127.0.0.1 (DNS rebinding) gets 421, not the API.
- Mutations with the right token are rate limited per token (a token bucket), so requests from
  others behind the same address cannot lock the operator out; wrong tokens are limited per
  client address, so guessing stays slow; a request with no token at all is simply 401.
  Bodies are capped.
- Query parameters are parsed here: a bad value is a 400 naming the parameter.
- Every refusal and every failure is `{"error": ..., "detail": ...}` JSON, redacted like any
  other body: a 500 never carries a trace (it goes to the log instead).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web

log = structlog.get_logger("watcher.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
Redact = Callable[[Any], Any]

API_PREFIX = "/error-monitor/"
# The API description holds no data, and tools fetch it without credentials.
PUBLIC_API_PATHS = frozenset({"/error-monitor/openapi.json"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_TOKEN_ENV = "WATCHER_API_TOKEN"
MAX_HOURS = 720.0
DEFAULT_HOURS = 1.0  # the original API's default look-back
MAX_INTERVAL = 86400.0
MAX_BATCH = 50
TOKEN_BUCKET = "token"  # the rate limiter's key for requests that carry the (one) API token
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"  # also declared in the OpenAPI document
_ID = re.compile(ID_PATTERN)
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})

# Inline script and style are refused, so even markup that slipped into the page could not run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def identity(value: Any) -> Any:
    return value


class ApiError(Exception):
    """A request the API refuses: rendered as `{"error": error, "detail": detail}`."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail
        self.headers = headers or {}


@dataclass(frozen=True)
class SecurityConfig:
    """The API's access rules; `token` None disables every mutating route."""

    token: str | None = None
    protect_reads: bool = False
    posts_per_minute: float = 10.0
    post_burst: int = 10
    max_body_bytes: int = 64 * 1024
    max_clients: int = 4096
    token_env: str = DEFAULT_TOKEN_ENV  # only named in the 403 message
    clock: Callable[[], float] = time.monotonic
    # Host header names accepted (lower case, no port); None accepts any (a wildcard listen)
    allowed_hosts: frozenset[str] | None = None
    # push-source paths (OTLP /v1/logs): the token is required, but exporters post often and
    # in large batches, so the POST rate limit and body cap are theirs to apply (503, 413)
    ingest_paths: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # An empty or blank token (an env var set to "") must not become a valid credential.
        token = (self.token or "").strip() or None
        object.__setattr__(self, "token", token)
        if not (self.posts_per_minute > 0 and self.post_burst >= 1):
            raise ValueError("posts_per_minute must be > 0 and post_burst >= 1")
        if self.max_body_bytes < 1 or self.max_clients < 1:
            raise ValueError("max_body_bytes and max_clients must be >= 1")


def token_matches(header: str | None, token: str) -> bool:
    """Whether an Authorization header carries the bearer token, in constant time.

    Both sides are hashed first so neither the content nor the length of the token leaks
    through the comparison time.
    """
    scheme, _, value = (header or "").strip().partition(" ")
    offered = value.strip() if scheme.lower() == "bearer" else ""
    digest = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in (offered, token)]
    return hmac.compare_digest(digest[0], digest[1]) and bool(offered)


class RateLimiter:
    """A token bucket per client: `burst` requests at once, refilled at `per_second`.

    At most `max_clients` buckets are kept; the least recently used is forgotten first, which
    at worst gives a long-idle client a fresh bucket.
    """

    def __init__(
        self, per_second: float, burst: int, max_clients: int, clock: Callable[[], float]
    ) -> None:
        self.per_second, self.burst, self.max_clients = per_second, burst, max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Spend one token; 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - stamp) * self.per_second)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.per_second
        self._buckets[client] = (tokens - 1.0 if wait == 0.0 else tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait


def _unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "missing or invalid bearer token (Authorization: Bearer <token>)",
        headers={"WWW-Authenticate": 'Bearer realm="watcher"'},
    )


def _rate_limited(wait: float) -> ApiError:
    retry = str(max(1, math.ceil(wait)))
    return ApiError(429, "rate limited", f"retry in {retry} s", headers={"Retry-After": retry})


def _require_token(request: web.Request, token: str, guesses: RateLimiter) -> None:
    """401 without the token; a wrong one also spends the client address's guess budget
    (429 once it is spent), which the right token never touches."""
    header = request.headers.get("Authorization")
    if token_matches(header, token):
        return
    if header and (wait := guesses.take(request.remote or "unknown")) > 0:
        raise _rate_limited(wait)
    raise _unauthorized()


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})


def allowed_hosts(listen: str, configured: tuple[str, ...]) -> frozenset[str] | None:
    """The Host names the API answers (None: any). Listening on loopback, only this machine's
    names: a browser sent there by DNS rebinding carries the attacker's name and gets 421."""
    if "*" in configured:
        return None
    host, _, _ = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if configured:
        return frozenset(h.lower().rstrip(".") for h in configured) | {host.lower()}
    if _is_ip(host) and ipaddress.ip_address(host).is_unspecified:
        return None  # 0.0.0.0 / [::]: names unknown; set allowed_hosts (and a token)
    return LOOPBACK_NAMES | {host.lower()}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_allowed(host: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a Host header ("name", "name:port", "[v6]:port") names an allowed host."""
    if allowed is None or not host:
        return True  # HTTP/1.0 clients send none; browsers (rebinding) always do
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1 : name.find("]")] if "]" in name else name
    elif name.count(":") == 1:
        name = name.rpartition(":")[0]
    return name.rstrip(".") in allowed


def _no_token_configured(config: SecurityConfig, what: str) -> ApiError:
    return ApiError(
        403,
        f"{what} disabled",
        f"no API token is configured: set the environment variable {config.token_env} "
        "(named by [http] token_env) and restart watcher",
    )


async def _check_mutation(
    request: web.Request, config: SecurityConfig, limiter: RateLimiter, guesses: RateLimiter
) -> None:
    if (request.content_length or 0) > config.max_body_bytes:
        raise _too_large(config)
    if config.token is None:
        raise _no_token_configured(config, "mutating routes")
    _require_token(request, config.token, guesses)
    if (wait := limiter.take(TOKEN_BUCKET)) > 0:  # per token: one token is configured
        raise _rate_limited(wait)
    # Reading enforces client_max_size on chunked bodies too (aiohttp raises 413).
    await request.read()


def _too_large(config: SecurityConfig) -> ApiError:
    return ApiError(413, "request body too large", {"max_bytes": config.max_body_bytes})


def _is_protected_read(request: web.Request, config: SecurityConfig) -> bool:
    path = request.path
    return config.protect_reads and path.startswith(API_PREFIX) and path not in PUBLIC_API_PATHS


def guard_middleware(config: SecurityConfig) -> Middleware:
    """Authentication, the POST rate limit and the body cap, before any handler runs."""
    per_second = config.posts_per_minute / 60.0
    limiter = RateLimiter(per_second, config.post_burst, config.max_clients, config.clock)
    guesses = RateLimiter(per_second, config.post_burst, config.max_clients, config.clock)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.headers.get("Host"), config.allowed_hosts):
            raise ApiError(
                421, "misdirected request", "the Host header does not name this server"
            )
        if request.method == "POST" and request.path in config.ingest_paths:
            if config.token is None:
                raise _no_token_configured(config, "log intake")
            _require_token(request, config.token, guesses)
        elif request.method not in SAFE_METHODS:
            await _check_mutation(request, config, limiter, guesses)
        elif _is_protected_read(request, config):
            if config.token is None:
                raise _no_token_configured(config, "protected reads")
            _require_token(request, config.token, guesses)
        return await handler(request)

    return guard


def error_body(error: str, detail: Any = None) -> dict[str, Any]:
    return {"error": error, "detail": detail}


def error_response(
    redact: Redact,
    status: int,
    error: str,
    detail: Any = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.json_response(redact(error_body(error, detail)), status=status, headers=headers)


def error_middleware(redact: Redact = identity) -> Middleware:
    """Refusals and aiohttp's own 4xx as JSON; anything unexpected as a logged, bare 500."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(redact, exc.status, exc.error, exc.detail, exc.headers)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            kept = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
            return error_response(redact, exc.status, exc.reason.lower(), None, kept)
        except Exception:
            log.exception("Request failed.", method=request.method, path=request.path)
            return error_response(redact, 500, "internal error", "the failure was logged")

    return errors


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: browser hardening on every response, static files included."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    # Patterns and samples are sensitive: never kept by a cache. Static files revalidate.
    cache = "no-cache" if request.path.startswith("/static/") else "no-store"
    response.headers.setdefault("Cache-Control", cache)


# --- query parameters: a bad value is a 400 naming the parameter, never a 500 --------------------


def invalid(name: str, expected: str) -> ApiError:
    return ApiError(400, "invalid parameter", {"parameter": name, "expected": expected})


def number_param(
    request: web.Request, name: str, default: float | None, high: float
) -> float | None:
    """A finite number in (0, high]; `default` when the parameter is absent."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= high):
        raise invalid(name, f"a number > 0 and <= {high:g}")
    # Whole numbers stay integers in the answer ("hours": 1), as the original API wrote them.
    return int(value) if value.is_integer() else value


def hours_param(request: web.Request) -> float:
    return number_param(request, "hours", DEFAULT_HOURS, MAX_HOURS) or DEFAULT_HOURS


def bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").strip().lower()
    if raw not in _TRUE | _FALSE:
        raise invalid(name, "true or false")
    return raw in _TRUE


def limit_param(request: web.Request) -> int:
    raw = request.query.get("limit", str(DEFAULT_LIMIT))
    # isdigit alone admits "²" and digit strings too long for int(): both would be a 500.
    digits = raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_LIMIT))
    if not digits or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("limit", f"an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def id_value(name: str, raw: str) -> str:
    if not _ID.fullmatch(raw):
        raise invalid(name, "an id of letters, digits and _.:- (at most 128 characters)")
    return raw


def ids_param(request: web.Request) -> list[str]:
    """error_ids as a comma list, repeated parameters (the original), or both."""
    parts = [p.strip() for raw in request.query.getall("error_ids", []) for p in raw.split(",")]
    ids = list(dict.fromkeys(p for p in parts if p))
    if not ids or len(ids) > MAX_BATCH:
        raise invalid("error_ids", f"a comma-separated list of 1 to {MAX_BATCH} ids")
    return [id_value("error_ids", i) for i in ids]


def required_id(request: web.Request, name: str) -> str:
    raw = request.query.get(name)
    if raw is None:
        raise invalid(name, "a required error id")
    return id_value(name, raw.strip())
