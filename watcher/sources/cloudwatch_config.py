"""The [[sources]] keys of a cloudwatch source (type = "cloudwatch"), with their checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Literal

from watcher.configschema import AtLeast, Seconds, SecondsOrZero
from watcher.sources.base import Check, SourceContext

if TYPE_CHECKING:
    from watcher.sources.cloudwatch import CloudWatchSource

# Matches whole events, so a Lambda traceback (continuation lines inside the same event) comes
# with its error line; terms are case-sensitive words, hence both spellings of "error".
DEFAULT_FILTER = '?ERROR ?Error ?error ?Exception ?Traceback ?panic ?FATAL ?"Task timed out"'
MAX_PAGE_LIMIT = 10_000  # FilterLogEvents' own maximum
MAX_LIVE_GROUPS = 10  # StartLiveTail takes 1-10 log groups
MAX_LIVE_PATTERN = 1024  # characters of a Live Tail filter pattern


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudWatchSourceConfig:
    """[[sources]] type = "cloudwatch": log groups in AWS CloudWatch Logs."""

    type: str = "cloudwatch"
    name: str = "cloudwatch"
    log_groups: list[str] = field(default_factory=list)
    log_group_prefix: str = ""
    log_stream_prefix: str = ""
    region: str = ""
    profile: str = ""
    endpoint_url: str = ""
    filter_pattern: str = DEFAULT_FILTER
    mode: Literal["poll", "live"] = "poll"
    interval: Seconds = 10.0
    overlap: SecondsOrZero = 10.0
    latency: SecondsOrZero = 5.0
    lookback: SecondsOrZero = 300.0
    max_backoff: Seconds = 60.0
    page_limit: Annotated[int, AtLeast(1)] = MAX_PAGE_LIMIT
    # a fleet reads it on one watcher at a time (a source lease: watcher/fleet/)
    shared: bool = False

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values no CloudWatch source can run with."""
        if bool(self.log_groups) == bool(self.log_group_prefix):
            raise ValueError("log_groups: set either log_groups or log_group_prefix (not both)")
        if any(not isinstance(g, str) or not g for g in self.log_groups):
            raise ValueError("log_groups: must be non-empty strings")
        if len(set(self.log_groups)) != len(self.log_groups):
            raise ValueError("log_groups: a log group is listed twice")
        if not 1 <= self.page_limit <= MAX_PAGE_LIMIT:
            raise ValueError(f"page_limit: must be between 1 and {MAX_PAGE_LIMIT}")
        if self.endpoint_url and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError("endpoint_url: must start with http:// or https://")
        if self.mode == "live":
            if len(self.log_groups) > MAX_LIVE_GROUPS:
                raise ValueError(f"log_groups: live mode takes at most {MAX_LIVE_GROUPS} groups")
            if len(self.filter_pattern) > MAX_LIVE_PATTERN:
                raise ValueError(
                    f"filter_pattern: live mode takes at most {MAX_LIVE_PATTERN} characters"
                )

    async def probe(self) -> list[Check]:
        """`check-config --probe`: every log group exists and is readable."""
        from watcher.sources.probes import cloudwatch_source

        return await cloudwatch_source(self)

    def build(self, ctx: SourceContext) -> CloudWatchSource:
        """The source this config describes."""
        from watcher.sources.cloudwatch import CloudWatchSource  # the config imports no boto3

        self.validate()
        return CloudWatchSource(self, ctx)
