"""POSTing one message to one webhook, with retries.

Retried: 408, 429, 5xx, network errors and timeouts — after the server's Retry-After when it
sends one, else after an exponential backoff with full jitter. Not retried: other 4xx (the
payload or URL is wrong; sending it again will not help) and 3xx: redirects are not followed,
because following one would carry the secret URL's payload to a host nobody configured.
The URL is a secret too, so logs name the host only and error texts are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from watcher.alerts.targets import WebhookTarget
from watcher.backoff import Backoff

Sleep = Callable[[float], Awaitable[None]]
_BODY_BYTES = 512  # enough for Slack's error words ("invalid_payload", "no_service")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one message; `rng` and `sleep` are injectable for tests."""

    max_retries: int = 4
    initial: float = 1.0
    cap: float = 30.0
    # A longer Retry-After is not waited out: it would hold every later alert behind it.
    max_retry_after: float = 120.0
    request_timeout: float = 10.0
    rng: Callable[[], float] = random.random
    sleep: Sleep = asyncio.sleep


@dataclass(frozen=True)
class Attempt:
    """The result of one POST."""

    ok: bool
    retry: bool
    status: int | None = None
    retry_after: float | None = None
    error: str = ""


def is_retryable(status: int) -> bool:
    """Whether a response status is worth sending the same message again."""
    return status in (408, 429) or status >= 500


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def scrub(text: str, target: WebhookTarget) -> str:
    """`text` with the target's URL (and its path, where the secret usually is) hidden."""
    text = text.replace(target.url, f"<{target.host}>")
    path = urlsplit(target.url).path
    return text.replace(path, "/…") if len(path) > 1 else text


class Poster:
    """Sends messages over one aiohttp session; returns whether each was delivered."""

    def __init__(self, session: aiohttp.ClientSession, policy: RetryPolicy, log: Any) -> None:
        self.session, self.policy, self.log = session, policy, log

    async def deliver(
        self, target: WebhookTarget, payload: Any, **context: Any
    ) -> tuple[bool, int]:
        """POST `payload`, retrying as the policy allows; (delivered, attempts made).

        `context` is bound to the log lines (kind, patterns); the target shows as its host only.
        """
        policy = self.policy
        backoff = Backoff(initial=policy.initial, cap=policy.cap, rng=policy.rng)
        log = self.log.bind(host=target.host, **context)
        attempt = 0
        while True:
            attempt += 1
            result = await self._post(target, payload)
            if result.ok:
                return True, attempt
            delay = self._delay(result, backoff) if attempt <= policy.max_retries else None
            if delay is None:
                log.error("Alert delivery failed; giving up.", attempts=attempt, **_why(result))
                return False, attempt
            log.warning("Alert delivery failed; retrying.", delay=round(delay, 3), **_why(result))
            await policy.sleep(delay)

    def _delay(self, result: Attempt, backoff: Backoff) -> float | None:
        """Seconds before the next attempt, or None when there should be none."""
        if not result.retry:
            return None
        if result.retry_after is None:
            return backoff.next_delay()
        return result.retry_after if result.retry_after <= self.policy.max_retry_after else None

    async def _post(self, target: WebhookTarget, payload: Any) -> Attempt:
        timeout = aiohttp.ClientTimeout(total=self.policy.request_timeout)
        try:
            async with self.session.post(
                target.url,
                json=payload,
                headers=dict(target.headers),
                allow_redirects=False,
                timeout=timeout,
            ) as response:
                body = await response.content.read(_BODY_BYTES)
                return _judge(response, body, target)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {scrub(str(exc), target)}".rstrip(": ")
            return Attempt(ok=False, retry=True, error=error)


def _judge(response: aiohttp.ClientResponse, body: bytes, target: WebhookTarget) -> Attempt:
    status = response.status
    if 200 <= status < 300:
        return Attempt(ok=True, retry=False, status=status)
    return Attempt(
        ok=False,
        retry=is_retryable(status),
        status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        error=scrub(body.decode("utf-8", "replace").strip(), target)[:200],
    )


def _why(result: Attempt) -> dict[str, Any]:
    """Log fields describing a failed attempt."""
    fields: dict[str, Any] = {"status": result.status, "error": result.error}
    if result.retry_after is not None:
        fields["retry_after"] = result.retry_after
    return fields
