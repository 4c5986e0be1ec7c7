"""The kubernetes source, driven by the real kubernetes_asyncio client against the fake API
server in tests/fakes/kube_api.py: list + watch of pods, one chunked log stream per container,
resume by sinceTime with de-duplication, kubeconfig and in-cluster auth."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from kubernetes_asyncio.client.exceptions import ApiException

from tests.fakes.kube_api import (  # noqa: F401  (fake_kube: the fixture)
    TOKEN,
    FakeKube,
    fake_kube,
    self_signed,
    serving,
)
from tests.sources.contract import RecordingLog, SourceContract, Tail, make_ctx, wait_for
from watcher.configschema import SchemaError, build
from watcher.sources.base import Source, SourceContext
from watcher.sources.kubernetes.config import KubernetesSourceConfig
from watcher.sources.kubernetes.podlog import PodLog, Position
from watcher.sources.kubernetes.source import api_client

EVER = 10**10  # a lookback (s) covering the fake's clock, which starts in 2023


def kubeconfig(tmp_path: Path, url: str, token: str = TOKEN) -> str:
    """A kubeconfig file pointing at the fake with a bearer token."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": url}}],
                "users": [{"name": "watcher", "user": {"token": token}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "watcher"}}],
                "current-context": "fake",
            }
        )
    )
    return str(path)


def source_config(tmp_path: Path, url: str, **kw: Any) -> KubernetesSourceConfig:
    kw.setdefault("label_selector", "app=web")
    kw.setdefault("lookback", EVER)
    kw.setdefault("auth", "kubeconfig")
    return KubernetesSourceConfig(
        name=kw.pop("name", "kubernetes"), kubeconfig=kubeconfig(tmp_path, url), **kw
    )


class TestKubernetesContract(SourceContract):
    """The source contract over one pod's container log."""

    name: ClassVar[str] = "kubernetes"
    raw_bytes: ClassVar[bool] = False  # the fake's logs are text
    resumable: ClassVar[bool] = True

    @pytest.fixture(autouse=True)
    def _kube(self, fake_kube: tuple[FakeKube, str]) -> None:  # noqa: F811
        self.kube, self.url = fake_kube

    async def build(
        self, ctx: SourceContext, lines: list[bytes], tmp_path: Path, *, follow: bool
    ) -> Source:
        if ("default", "web-1") not in self.kube.pods:
            self.kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
            self.kube.write("default", "web-1", "app", *(line.decode() for line in lines))
        return source_config(tmp_path, self.url).build(ctx)


async def test_a_failed_log_request_is_no_line_of_the_log(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """A pod deleted between the watch and its log request answers 404 with a Status object: the
    request fails (the follower logs it and backs off) and that body is no line of the pod's log.
    It was read as one: the client does not look at the status of a raw answer."""
    _, url = fake_kube
    ctx = make_ctx()
    source = source_config(tmp_path, url).build(ctx)
    log = PodLog(source.name, "default/gone/app", Position(0), ctx.max_line_bytes)
    async with await api_client(source.config) as api:
        source._api = api
        with pytest.raises(ApiException) as failed:
            await source._read(log, ("default", "gone", "app"), follow=True)
        assert failed.value.status == 404
        lines = [
            line
            async for batch in source._window_stream(("default", "gone", "app"), None, None)
            for line in batch
        ]
    assert source.queue.empty() and lines == [] and log.line_no == 0


async def test_pods_come_and_go_each_container_its_stream(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """Pods the selector picks are followed as they appear; each container is its own stream;
    pods of other labels or namespaces are not read; a deleted pod's stream ends."""
    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app", "sidecar"])
    kube.add_pod("default", "db-1", {"app": "db"}, ["db"])
    kube.add_pod("other", "web-9", {"app": "web"}, ["app"])
    kube.write("default", "web-1", "app", "app started")
    kube.write("default", "web-1", "sidecar", "proxy ready")
    kube.write("default", "db-1", "db", "db line")
    kube.write("other", "web-9", "app", "other namespace")
    ctx = make_ctx()
    tail = Tail(source_config(tmp_path, url).build(ctx), ctx)
    await tail.wait(2)
    kube.add_pod("default", "web-2", {"app": "web"}, ["app"])
    kube.write("default", "web-2", "app", "new pod line 1", "new pod line 2")
    await tail.wait(4)
    kube.delete_pod("default", "web-1")
    kube.write("default", "web-2", "app", "still here")
    await tail.wait(5)
    await tail.stop()
    by_stream = {}
    for line in tail.lines:
        by_stream.setdefault(line.stream, []).append(line.text)
    assert by_stream == {
        "default/web-1/app": ["app started"],
        "default/web-1/sidecar": ["proxy ready"],
        "default/web-2/app": ["new pod line 1", "new pod line 2", "still here"],
    }
    asked = {(r["pod"], r["container"]) for r in kube.log_requests}
    assert asked == {("web-1", "app"), ("web-1", "sidecar"), ("web-2", "app")}
    assert all(r["follow"] == "true" and r["timestamps"] == "true" for r in kube.log_requests)


async def test_reconnect_resumes_with_since_time_and_no_duplicates(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """When the API drops every stream (a restart), the source relists, reconnects each log
    with sinceTime, and delivers what followed once: nothing lost, nothing twice."""
    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    kube.write("default", "web-1", "app", "one", "two")
    ctx = make_ctx()
    tail = Tail(source_config(tmp_path, url).build(ctx), ctx)
    await tail.wait(2)
    kube.drop_connections()
    await wait_for(lambda: len(kube.log_requests) >= 2)  # reconnected: the API resends from
    kube.write("default", "web-1", "app", "three")  # the second, the source drops what it had
    await tail.wait(3)
    await tail.stop()
    assert tail.texts() == ["one", "two", "three"]
    again = [r for r in kube.log_requests if r.get("sinceTime")]
    assert again and again[-1]["sinceTime"].endswith("Z")
    assert ctx.metrics.source_reconnects.labels("kubernetes")._value.get() >= 1


async def test_expired_watch_relists(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """A watch whose resourceVersion expired (410) is replaced by a fresh list, so a pod that
    appeared meanwhile is still found."""
    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    kube.write("default", "web-1", "app", "first")
    ctx = make_ctx()
    tail = Tail(source_config(tmp_path, url).build(ctx), ctx)
    await tail.wait(1)
    kube.expire_history()
    kube.add_pod("default", "web-2", {"app": "web"}, ["app"])
    kube.write("default", "web-2", "app", "late pod")
    kube.expire_history()
    kube.drop_connections()  # the watch reconnects from its now-expired version
    await tail.wait(2)
    await tail.stop()
    assert "late pod" in tail.texts()


async def test_bad_token_is_reported_not_silent(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """A kubeconfig with a wrong token gets 401: the source says so (warning, source down)."""
    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    log = RecordingLog()
    ctx = make_ctx(log=log)
    config = KubernetesSourceConfig(
        name="kubernetes", auth="kubeconfig", kubeconfig=kubeconfig(tmp_path, url, token="wrong")
    )
    tail = Tail(config.build(ctx), ctx)
    await wait_for(lambda: log.events("warning"))
    await tail.stop()
    assert "401" in str(log.records[0][2]["error"])
    assert ctx.metrics.source_up.labels("kubernetes")._value.get() == 0


async def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a pod (KUBERNETES_SERVICE_HOST set, no kubeconfig) the source reaches the API over
    https with the service account's token, verifying the server against its ca.crt."""
    account = tmp_path / "serviceaccount"
    account.mkdir()
    self_signed(account)
    (account / "token").write_text(TOKEN)
    kube = FakeKube()
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    kube.write("default", "web-1", "app", "over tls")
    async with serving(kube, (account / "ca.crt", account / "server.key")) as url:
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", url.rsplit(":", 1)[1])
        monkeypatch.delenv("KUBECONFIG", raising=False)
        config = KubernetesSourceConfig(
            name="kubernetes",
            label_selector="app=web",
            lookback=EVER,
            service_account_dir=str(account),
        )
        async with await api_client(config) as api:
            assert api.configuration.host == url
        ctx = make_ctx()
        tail = Tail(config.build(ctx), ctx)
        assert await tail.wait(1) == ["over tls"]
        await tail.stop()


def test_config_errors_name_the_key() -> None:
    """Bad values are config errors naming the key; the client is not imported to check them."""
    with pytest.raises(SchemaError, match="watch_timeout"):
        build(KubernetesSourceConfig, {"type": "kubernetes", "name": "k", "watch_timeout": 0})
    with pytest.raises(SchemaError, match="auth"):
        build(KubernetesSourceConfig, {"type": "kubernetes", "name": "k", "auth": "magic"})


async def test_a_refused_token_fails_the_scan_instead_of_finding_no_pods(
    tmp_path: Path,
    fake_kube: tuple[FakeKube, str],  # noqa: F811
) -> None:
    """The pod list answered 401 is an error the scan reports (exit 3), not an empty list: a
    source with a wrong token must not read as a cluster with no matching pods."""
    from kubernetes_asyncio.client.exceptions import ApiException

    from tests.sources.contract import collect

    kube, url = fake_kube
    kube.add_pod("default", "web-1", {"app": "web"}, ["app"])
    cfg = KubernetesSourceConfig(
        name="k", auth="kubeconfig", kubeconfig=kubeconfig(tmp_path, url, token="wrong-token")
    )
    source = cfg.build(make_ctx())
    with pytest.raises(ApiException) as refused:
        await collect(source.window(None, None))
    assert refused.value.status == 401
