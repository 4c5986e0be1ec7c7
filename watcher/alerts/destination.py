"""The destination seam: what every alert destination is, and the config keys they share.

A destination's config dataclass *is* its factory (`build(ctx) -> Destination`), selected by
`type` in `[[alerts.destinations]]` through `watcher.alerts.DESTINATIONS`, as sources are. The
Alerter owns routing, storm rules, redaction and batching; a destination only turns a batch of
already-redacted alerts into requests and says how many messages got through.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, ClassVar, Protocol

from watcher.alerts.alert import ROUTABLE, Alert
from watcher.alerts.delivery import Poster
from watcher.alerts.rules import Route
from watcher.configschema import AtLeast, OneOf, Seconds, SecondsOrZero
from watcher.model import SEVERITIES


@dataclass(frozen=True)
class Outcome:
    """How one `send` went, in messages (requests that carry alerts)."""

    sent: int = 0
    failed: int = 0


class Destination(Protocol):
    """Somewhere alerts go: a webhook, Slack, Alertmanager, PagerDuty."""

    name: str
    route: Route
    # > 0: the Alerter sends the destination's open patterns again this often while they stay
    # open (Alertmanager forgets an alert whose endsAt passed); 0: never
    resend_interval: float

    async def send(self, poster: Poster, alerts: Sequence[Alert]) -> Outcome:
        """Deliver redacted `alerts` (one batch, any kinds); never raises for a failed POST."""
        ...


@dataclass(frozen=True)
class DestinationContext:
    """What building a destination may use."""

    public_url: str = ""  # [http] public_url: links to the pattern's page
    env: Mapping[str, str] | None = None  # where *_env keys are read; None: os.environ


@dataclass(frozen=True, kw_only=True)
class DestinationConfig:
    """Keys every `[[alerts.destinations]]` table has; subclasses add their own and `build`.

    `min_severity` and `cooldown` default to the `[alerts]` keys of the same name.
    """

    type: str
    name: str = ""
    kinds: tuple[str, ...] = ()  # default: every kind the type can deliver (SUPPORTED)
    min_severity: Annotated[str, OneOf(SEVERITIES)] = "high"
    min_count: Annotated[int, AtLeast(1)] = 1
    window: Seconds = 300.0
    cooldown: SecondsOrZero = 900.0

    SUPPORTED: ClassVar[tuple[str, ...]] = ROUTABLE  # kinds this type can deliver

    def __post_init__(self) -> None:
        if not self.kinds:
            object.__setattr__(self, "kinds", self.SUPPORTED)

    def validate(self) -> None:
        """Raise ValueError("key: problem") for settings no destination can work with."""
        wrong = [k for k in self.kinds if k not in self.SUPPORTED]
        if wrong:
            raise ValueError(
                f"kinds: {self.type} cannot deliver {wrong} (expected some of: "
                f"{', '.join(self.SUPPORTED)})"
            )
        self.route()

    def route(self) -> Route:
        """The routing and storm settings of this destination."""
        return Route(
            kinds=tuple(self.kinds),
            min_severity=self.min_severity,
            min_count=self.min_count,
            window=self.window,
            cooldown=self.cooldown,
        )

    def build(self, ctx: DestinationContext) -> Destination:
        """The destination this config describes."""
        raise NotImplementedError
