"""Any Claude endpoint behind one seam: the SDK's own Anthropic, Bedrock and Vertex clients (and
an Anthropic-compatible server through base_url), each driven against the fake with its own
paths, auth and body rules — first answer and a repair round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_api import (
    API_KEY,
    VERTEX_TOKEN,
    AnthropicFake,
    good_input,
    tool_use,
)
from tests.test_fix_analyze import make_group
from watcher.config import ConfigError, load_config
from watcher.fix.analyze import Analyzer
from watcher.fix.context import FixContext, build_context
from watcher.fix.pipeline import FixPipeline
from watcher.fix.providers import Endpoint, make_client
from watcher.store import Store

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def ctx(tmp_path: Path) -> FixContext:
    """The payments checkout's context."""
    (tmp_path / "src").mkdir()
    code = "def total(items):\n    return sum(items) / len(items)\n"
    (tmp_path / "src/payments.py").write_text(code)
    return build_context(make_group(), tmp_path)


def endpoints(url: str) -> dict[str, Endpoint]:
    """One endpoint per provider, all pointed at the fake."""
    return {
        "anthropic-compatible": Endpoint(base_url=url, api_key=API_KEY, max_retries=0),
        "bedrock": Endpoint("bedrock", base_url=url, region="us-east-1", max_retries=0),
        "vertex": Endpoint(
            "vertex", base_url=f"{url}/v1", region="us-east5", project="acme-prod", max_retries=0
        ),
    }


EXPECTED_PATH = {
    "anthropic-compatible": "/v1/messages",
    "bedrock": "/model/claude-test/invoke",
    "vertex": "/v1/projects/acme-prod/locations/us-east5/publishers/anthropic/models/"
    "claude-test:rawPredict",
}


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS keys for SigV4 and a Vertex access token, as the environment provides them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("GOOGLE_OAUTH_ACCESS_TOKEN", VERTEX_TOKEN)


@pytest.mark.parametrize("name", list(EXPECTED_PATH))
async def test_each_provider_answers_and_repairs_through_its_own_client(
    anthropic_fake: AnthropicFake, ctx: FixContext, cloud_env: None, name: str
) -> None:
    """The first answer and a repair round go through the provider's own client: its path,
    its auth (SigV4 for Bedrock, a bearer token for Vertex), the model in the path where the
    provider wants it; the second request answers the first call with the feedback."""
    anthropic_fake.script(tool_use(good_input()), tool_use(good_input(confidence=0.9)))
    endpoint = endpoints(anthropic_fake.url)[name]
    async with Analyzer(model="claude-test", endpoint=endpoint) as analyzer:
        first = await analyzer.analyze(ctx, make_group())
        second = await analyzer.repair(ctx, make_group(), [(first, "The guard refused: x")])
    assert first.fixability == "patch" and second.confidence == 0.9
    one, two = anthropic_fake.messages
    assert one.path == two.path == EXPECTED_PATH[name]
    assert one.body["tools"][0]["name"] == "report_fix"
    turns = two.body["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[1]["content"][0]["id"] == first.tool_use_id
    assert turns[2]["content"][0] == {
        "type": "tool_result", "tool_use_id": first.tool_use_id,
        "content": "The guard refused: x",
    }  # fmt: skip
    assert AWS_SECRET not in one.text + str(one.headers)


def test_the_config_picks_the_provider(tmp_path: Path) -> None:
    """[autofix] provider/base_url/region/project reach the client; an unknown provider is a
    config error naming the key."""
    path = tmp_path / "w.toml"
    path.write_text(
        '[autofix]\nprovider = "bedrock"\nregion = "eu-west-1"\n'
        'base_url = "http://127.0.0.1:9/bedrock"\n'
    )
    with Store(":memory:") as store:
        fixer = FixPipeline.from_config(load_config(path), store)
    client: Any = fixer.analyzer.client  # type: ignore[attr-defined]
    assert type(client).__name__ == "AsyncAnthropicBedrock"
    assert client.aws_region == "eu-west-1" and str(client.base_url).startswith("http://127.0.0.1:9")
    path.write_text('[autofix]\nprovider = "openai"\n')
    with pytest.raises(ConfigError, match="provider"):
        load_config(path)


def test_unknown_provider_in_code_is_refused() -> None:
    """The registry names the providers it knows."""
    with pytest.raises(ValueError, match="anthropic, bedrock, vertex"):
        make_client(Endpoint("azure"))
