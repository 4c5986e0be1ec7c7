"""The boto3 side of the CloudWatch source: the client, the calls, and what their errors mean.

Everything here is synchronous and runs in a worker thread (asyncio.to_thread). boto3 rather
than aiobotocore: boto3 is already the project's AWS dependency, and a poll makes a handful of
calls every few seconds, so a thread per call costs nothing worth a second SDK.

Retries live in botocore (adaptive mode: exponential backoff plus a client-side rate limiter
that slows down after throttling responses); the source only backs off once those are spent.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions as bx
from botocore.config import Config

MAX_ATTEMPTS = 5  # botocore's attempts per call (the first + 4 retries) before the source sees it
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 15.0  # a thread stuck in a read delays exit; pages over wide windows take seconds

# Errors no retry fixes: raised at start as one line rather than retried forever.
_FATAL_CODES = frozenset(
    (
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "ExpiredTokenException",
        "AuthFailure",
        "InvalidParameterException",
        "ValidationException",
        # a group that does not exist: follow mode handles it per group before this applies
        "ResourceNotFoundException",
    )
)
_FATAL_TYPES = (
    bx.NoCredentialsError,
    bx.PartialCredentialsError,
    bx.NoRegionError,
    bx.ProfileNotFound,
    bx.ParamValidationError,
    bx.CredentialRetrievalError,
    bx.TokenRetrievalError,
    bx.SSOError,
)


class CloudWatchError(Exception):
    """A problem retrying will not fix; the message is one line naming what to change."""


class GroupNotFound(CloudWatchError):
    """A configured log group does not exist (in this account and region)."""

    def __init__(self, group: str, region: str) -> None:
        super().__init__(f"log group {group!r} not found in region {region}")
        self.group = group


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else)."""
    if isinstance(exc, bx.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_fatal(exc: BaseException) -> bool:
    """True for configuration and credential problems; False for what may pass (throttling,
    5xx, the network)."""
    return isinstance(exc, _FATAL_TYPES) or error_code(exc) in _FATAL_CODES


def refuses_token(exc: BaseException) -> bool:
    """True for AWS's answer to a next token it no longer accepts (tokens expire after 24 h):
    "InvalidParameterException: The specified nextToken is invalid"."""
    return error_code(exc) == "InvalidParameterException"


def describe(exc: BaseException) -> str:
    """One line for a log or an exception message."""
    if isinstance(exc, bx.ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip().rstrip(":")
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def resolve_region(region: str, session_region: str | None) -> str:
    """The region: from the config, else AWS_REGION / AWS_DEFAULT_REGION, else the profile."""
    found = (
        region
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or session_region
    )
    if not found:
        raise CloudWatchError(
            "no AWS region: set `region` in the source, or AWS_REGION in the environment"
        )
    return found


def make_client(
    *, region: str, profile: str, endpoint_url: str, live: bool = False
) -> tuple[Any, str]:
    """A CloudWatch Logs client and its region; credentials come from boto3's default chain."""
    try:
        session = boto3.session.Session(profile_name=profile or None)
    except bx.ProfileNotFound:
        raise CloudWatchError(f"AWS profile {profile!r} not found") from None
    name = resolve_region(region, session.region_name)
    config = Config(
        retries={"mode": "adaptive", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="watcher",
        # Live Tail's host prefix ("streaming-logs.") cannot be resolved for a custom endpoint
        # such as moto; AWS itself needs it.
        inject_host_prefix=not (live and endpoint_url),
    )
    client = session.client(
        "logs", region_name=name, endpoint_url=endpoint_url or None, config=config
    )
    return client, name


@dataclass(frozen=True, slots=True)
class Page:
    """One FilterLogEvents page: events sorted by timestamp, and the token for the next."""

    events: list[dict[str, Any]]
    next_token: str | None


def filter_page(client: Any, params: Mapping[str, Any], token: str | None) -> Page:
    """One page of filter_log_events; may be empty while a next token still says "more"."""
    call = dict(params)
    if token:
        call["nextToken"] = token
    response = client.filter_log_events(**call)
    return Page(response.get("events") or [], response.get("nextToken") or None)


def filter_params(
    group: str,
    *,
    start: int | None,
    end: int | None,
    pattern: str,
    stream_prefix: str,
    limit: int,
) -> dict[str, Any]:
    """The filter_log_events arguments for one group and window (times in epoch ms)."""
    # interleaved is ignored by AWS since 2019 (always on), but moto sorts across streams only
    # when it is set, and the source relies on timestamp order
    params: dict[str, Any] = {"logGroupName": group, "limit": limit, "interleaved": True}
    if start is not None:
        params["startTime"] = max(0, start)
    if end is not None:
        params["endTime"] = max(0, end)
    if pattern:
        params["filterPattern"] = pattern
    if stream_prefix:
        params["logStreamNamePrefix"] = stream_prefix
    return params


def check_group(client: Any, group: str, region: str) -> None:
    """Raise GroupNotFound when `group` does not exist; costs one empty FilterLogEvents call.

    (FilterLogEvents rather than DescribeLogGroups: a least-privilege policy may grant only
    logs:FilterLogEvents on the groups it names.)
    """
    now = int(time.time() * 1000)
    try:
        client.filter_log_events(logGroupName=group, startTime=now, endTime=now, limit=1)
    except bx.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise GroupNotFound(group, region) from None
        raise


def resolve_prefix(client: Any, prefix: str) -> dict[str, str]:
    """Every log group whose name starts with `prefix`: name -> ARN (without the ":*")."""
    groups: dict[str, str] = {}
    paginator = client.get_paginator("describe_log_groups")
    for page in paginator.paginate(logGroupNamePrefix=prefix):
        for group in page.get("logGroups") or []:
            arn = group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*")
            groups[group["logGroupName"]] = arn
    return groups
