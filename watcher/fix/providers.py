"""Where the model runs: the one seam between the analyzer and a Claude endpoint.

`[autofix] provider` picks the SDK's own client — `anthropic` (the Anthropic API, or any
Anthropic-compatible server through `base_url`: LiteLLM, Ollama, vLLM and llama.cpp expose
`/v1/messages`, so logs and code can stay inside the network), `bedrock` (AWS, credentials from
the boto3 chain) or `vertex` (Google Cloud, an access token or Application Default
Credentials). All three take the same `messages.create` request, so the analyzer does not know
which one it talks to. Registered by name in one dict; adding one is one function.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anthropic

PROVIDERS = ("anthropic", "bedrock", "vertex")
VERTEX_TOKEN_ENV = "GOOGLE_OAUTH_ACCESS_TOKEN"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Which Claude endpoint, and how patient to be with it."""

    provider: str = "anthropic"
    base_url: str = ""  # "" = the provider's default (or its *_BASE_URL variable)
    region: str = ""  # bedrock: AWS region; vertex: e.g. "us-east5"
    project: str = ""  # vertex: the Google Cloud project id
    api_key: str | None = None  # anthropic; None = ANTHROPIC_API_KEY
    max_retries: int = 4
    timeout: float = 120.0


def _anthropic(e: Endpoint, env: Mapping[str, str]) -> Any:
    return anthropic.AsyncAnthropic(
        api_key=e.api_key, base_url=e.base_url or None, max_retries=e.max_retries,
        timeout=e.timeout,
    )  # fmt: skip


def _bedrock(e: Endpoint, env: Mapping[str, str]) -> Any:
    return anthropic.AsyncAnthropicBedrock(
        aws_region=e.region or None, base_url=e.base_url or None, max_retries=e.max_retries,
        timeout=e.timeout,
    )  # fmt: skip


def _vertex(e: Endpoint, env: Mapping[str, str]) -> Any:
    kwargs: dict[str, Any] = {"max_retries": e.max_retries, "timeout": e.timeout}
    if e.region:
        kwargs["region"] = e.region
    if e.project:
        kwargs["project_id"] = e.project
    if e.base_url:
        kwargs["base_url"] = e.base_url
    return anthropic.AsyncAnthropicVertex(access_token=env.get(VERTEX_TOKEN_ENV) or None, **kwargs)


REGISTRY: dict[str, Callable[[Endpoint, Mapping[str, str]], Any]] = {
    "anthropic": _anthropic,
    "bedrock": _bedrock,
    "vertex": _vertex,
}


def make_client(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> Any:
    """The SDK's async client for `endpoint` (ValueError for an unknown provider)."""
    try:
        factory = REGISTRY[endpoint.provider]
    except KeyError:
        raise ValueError(f"provider: expected one of {', '.join(PROVIDERS)}") from None
    return factory(endpoint, os.environ if environ is None else environ)


def credential_problem(client: Any) -> str | None:
    """Why `client` cannot authenticate (checked before spending budget), or None. Bedrock and
    Vertex resolve credentials from their own chains at request time: not judged here."""
    if not isinstance(client, anthropic.AsyncAnthropic):
        return None
    if client.api_key is None and client.auth_token is None and client.credentials is None:
        return "no API key: set ANTHROPIC_API_KEY"
    return None
