"""Webhook targets: where an alert goes and in which payload format.

The format rule, in order:

1. An explicit scheme prefix wins: `slack+https://…` posts Slack blocks, `json+https://…` posts
   generic JSON; the prefix is stripped before posting.
2. Otherwise a URL on the host `hooks.slack.com` is Slack.
3. Anything else gets generic JSON.

Slack-compatible receivers on other hosts (Mattermost, Rocket.Chat, Discord's `/slack`
endpoint) therefore need the `slack+` prefix. A webhook URL is itself the credential, so a
target never shows its URL: `repr()` and logs carry the host only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Format = Literal["slack", "json"]
FORMATS: tuple[Format, ...] = ("slack", "json")
SLACK_HOST = "hooks.slack.com"


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """One webhook: the plain http(s) URL to POST to and the payload format it expects."""

    url: str = field(repr=False)
    format: Format = "json"
    # extra request headers (an Alertmanager bearer token): secrets, so never shown either
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"webhook format: expected one of {FORMATS}, got {self.format!r}")
        if urlsplit(self.url).scheme not in ("http", "https") or not self.host:
            raise ValueError(f"webhook URL for host {self.host or '?'}: expected http(s)://HOST/…")

    @property
    def host(self) -> str:
        """The host (and port), the only part of the URL that may be logged."""
        try:
            return urlsplit(self.url).netloc.rpartition("@")[2]
        except ValueError:
            return ""


def parse_target(spec: str | WebhookTarget) -> WebhookTarget:
    """A WebhookTarget from a config string, applying the format rule in the module docstring."""
    if isinstance(spec, WebhookTarget):
        return spec
    scheme, sep, rest = spec.partition("+")
    if sep and scheme in FORMATS and rest.startswith(("http://", "https://")):
        return WebhookTarget(rest, scheme)  # type: ignore[arg-type]  # checked: in FORMATS
    host = (urlsplit(spec).hostname or "").lower()
    return WebhookTarget(spec, "slack" if host == SLACK_HOST else "json")
