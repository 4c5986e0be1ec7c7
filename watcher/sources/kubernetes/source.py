"""Pod logs through the Kubernetes API, with kubernetes_asyncio (aiohttp, like watcher).

Follow mode lists the pods the namespace and label selector pick, then watches them from the
list's resourceVersion (relisting when the watch expires: 410). Each running container gets its
own stream task (`podlog`), stream name `namespace/pod/container`, so multi-line assembly never
mixes two containers. A stream that ends while its pod still runs (an API server restart, a
container restart) reconnects with backoff and resumes by time with de-duplication; one whose
pod was deleted or finished ends. Pods running at start are read from `lookback` seconds ago
(or their checkpoint); pods that appear later from their first line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import ClientError
from kubernetes_asyncio import client as kclient
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio import watch as kwatch
from kubernetes_asyncio.client.exceptions import ApiException

from watcher.backoff import Backoff
from watcher.model import RawLine
from watcher.sources.base import SourceContext
from watcher.sources.kubernetes.config import KubernetesSourceConfig
from watcher.sources.kubernetes.podlog import NS, PodLog, Position

_QUEUE_BATCHES = 64  # batches waiting for the pipeline, over all containers: back-pressure
_CHUNK = 64 * 1024
StreamKey = tuple[str, str, str]  # namespace, pod, container


async def api_client(config: KubernetesSourceConfig) -> kclient.ApiClient:
    """An API client: the pod's service account in a cluster, else a kubeconfig."""
    in_cluster = config.auth == "in_cluster" or (
        config.auth == "auto" and not config.kubeconfig and "KUBERNETES_SERVICE_HOST" in os.environ
    )
    if in_cluster:
        configuration = kclient.Configuration()
        loader = kconfig.incluster_config.InClusterConfigLoader(
            token_filename=os.path.join(config.service_account_dir, "token"),
            cert_filename=os.path.join(config.service_account_dir, "ca.crt"),
        )
        loader.load_and_set(configuration)
        return kclient.ApiClient(configuration)
    return await kconfig.new_client_from_config(
        config_file=config.kubeconfig or None,
        context=config.context or None,
        persist_config=False,
    )


async def log_body(api: kclient.ApiClient, args: dict[str, Any]) -> Any:
    """The raw answer of a log request, whose body is the log. An error status raises
    ApiException: with `_preload_content=False` the client does not look at the status, and a pod
    deleted between the watch and this request answers 404 with a Status object, which was read
    as a line of its log."""
    response = await api.call_api(**args)
    response = response[0] if isinstance(response, tuple) else response
    if response.status >= 400:
        response.release()
        raise ApiException(status=response.status, reason=response.reason)
    return response


async def json_body(response: Any) -> dict[str, Any]:
    """The JSON of a raw (`_preload_content=False`) answer. An error status raises ApiException,
    as the generated client does for parsed answers: a 401 Status body must not read as a list
    of no pods (a blind source that looks fine)."""
    if response.status >= 400:
        raise ApiException(status=response.status, reason=response.reason)
    return await response.json()  # type: ignore[no-any-return]


def running_containers(pod: Any) -> list[str]:
    """The containers of a pod object (a dict, as the watch and list return here) that run."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return [s["name"] for s in statuses if "running" in (s.get("state") or {})]


def pod_id(pod: dict[str, Any]) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


class KubernetesSource:
    """Watches pods and runs one log stream task per running container."""

    delivery = "at_least_once"

    def __init__(self, config: KubernetesSourceConfig, ctx: SourceContext) -> None:
        self.config = config
        self.ctx = ctx
        self.name = config.name
        self.checkpoint: dict[str, Any] = dict(ctx.checkpoint or {})
        self.pods: dict[tuple[str, str], dict[str, Any]] = {}
        self.streams: dict[StreamKey, asyncio.Task[None]] = {}
        self.positions: dict[StreamKey, Position] = {}
        self.queue: asyncio.Queue[list[RawLine]] = asyncio.Queue(_QUEUE_BATCHES)
        self.started = time.time()
        self._api: kclient.ApiClient | None = None

    # --- follow ---------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[list[RawLine]]:
        """Every selected container's new lines until shutdown."""
        async with await api_client(self.config) as api:
            self._api = api
            watcher = asyncio.create_task(self._watch_pods(api), name=f"{self.name}-pods")
            shutdown = asyncio.ensure_future(self.ctx.shutdown.wait())
            try:
                while True:
                    get = asyncio.ensure_future(self.queue.get())
                    done, _ = await asyncio.wait(
                        {get, shutdown, watcher}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if get not in done:
                        get.cancel()
                        if watcher in done and not shutdown.done():
                            watcher.result()  # a crash of the watch loop surfaces here
                        return
                    yield get.result()
            finally:
                shutdown.cancel()
                await self._stop(watcher, *self.streams.values())
                self.ctx.metrics.source_up.labels(self.name).set(0)

    async def _stop(self, *tasks: asyncio.Task[None]) -> None:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watch_pods(self, api: kclient.ApiClient) -> None:
        """List, then watch from the list's version; relist when the watch expires or fails."""
        core = kclient.CoreV1Api(api)
        backoff = Backoff(cap=self.config.max_backoff)
        up = self.ctx.metrics.source_up.labels(self.name)
        first = True
        while not self.ctx.shutdown.is_set():
            try:
                version = await self._list(core, initial=first)
                first = False
                up.set(1)
                backoff.reset()
                await self._follow_watch(core, version)
            except (TimeoutError, ApiException, OSError, ClientError, ValueError) as exc:
                up.set(0)
                self.ctx.log.warning(
                    "Pod watch failed; retrying.", source=self.name, error=str(exc)[:300]
                )
                if not await backoff.wait(self.ctx.shutdown):
                    return
                self.ctx.metrics.source_reconnects.labels(self.name).inc()

    def _list_call(self, core: kclient.CoreV1Api) -> tuple[Any, dict[str, Any]]:
        kwargs: dict[str, Any] = {"label_selector": self.config.label_selector}
        if self.config.namespace:
            return core.list_namespaced_pod, {"namespace": self.config.namespace, **kwargs}
        return core.list_pod_for_all_namespaces, kwargs

    async def _list(self, core: kclient.CoreV1Api, *, initial: bool) -> str:
        call, kwargs = self._list_call(core)
        body = await json_body(await call(**kwargs, _preload_content=False))
        seen = set()
        for pod in body.get("items") or []:
            seen.add(pod_id(pod))
            self._pod_changed(pod, initial=initial)
        for gone in set(self.pods) - seen:
            self._pod_gone(gone)
        return str((body.get("metadata") or {}).get("resourceVersion") or "")

    async def _follow_watch(self, core: kclient.CoreV1Api, version: str) -> None:
        """Apply watch events until the watch ends (its timeout: then relist) or expires."""
        call, kwargs = self._list_call(core)
        watch = kwatch.Watch()
        kwargs.update(resource_version=version, timeout_seconds=self.config.watch_timeout)
        async with watch.stream(call, **kwargs) as events:
            try:
                async for event in events:
                    self._apply(event)
            except ApiException as exc:
                if exc.status != 410:
                    raise
                # the version expired: relist (what the watch missed is in the new list)

    def _apply(self, event: dict[str, Any]) -> None:
        """One watch event: a pod added, changed or deleted."""
        kind, pod = event.get("type"), event.get("raw_object")
        if not isinstance(pod, dict) or kind == "BOOKMARK":
            return
        if kind == "DELETED":
            self._pod_gone(pod_id(pod))
        else:
            self._pod_changed(pod, initial=False)

    def _pod_changed(self, pod: dict[str, Any], *, initial: bool) -> None:
        key = pod_id(pod)
        self.pods[key] = pod
        wanted = self.config.containers
        for container in running_containers(pod):
            stream = (*key, container)
            if wanted and container not in wanted:
                continue
            task = self.streams.get(stream)
            if task is None or task.done():
                self._start(stream, initial=initial)

    def _pod_gone(self, key: tuple[str, str]) -> None:
        """A deleted pod: its streams end on their own once the API closes them."""
        self.pods.pop(key, None)

    def _start(self, stream: StreamKey, *, initial: bool) -> None:
        position = self.positions.get(stream)
        if position is None:
            name = "/".join(stream)
            stored = Position.from_cursor(self.checkpoint.get(name))
            since = int((self.started - self.config.lookback) * NS) if initial else 0
            position = stored or Position(since)
            self.positions[stream] = position
        task = asyncio.create_task(self._stream(stream, position), name="/".join(stream))
        self.streams[stream] = task

    def _still_running(self, stream: StreamKey) -> bool:
        pod = self.pods.get(stream[:2])
        return pod is not None and stream[2] in running_containers(pod)

    async def _stream(self, stream: StreamKey, position: Position) -> None:
        """One container's log, reconnecting while the container runs."""
        log = PodLog(self.name, "/".join(stream), position, self.ctx.max_line_bytes)
        backoff = Backoff(cap=self.config.max_backoff)
        while not self.ctx.shutdown.is_set():
            try:
                await self._read(log, stream, follow=True)
                backoff.reset()
            except (TimeoutError, ApiException, OSError, ClientError) as exc:
                self.ctx.log.info(
                    "Pod log stream failed.",
                    source=self.name,
                    stream=log.stream,
                    error=str(exc)[:300],
                )
            if not self._still_running(stream) or not await backoff.wait(self.ctx.shutdown):
                return
            self.ctx.metrics.source_reconnects.labels(self.name).inc()

    async def _read(self, log: PodLog, stream: StreamKey, *, follow: bool) -> None:
        assert self._api is not None
        response = await log_body(self._api, log.request(*stream, follow=follow))
        try:
            async for batch in log.read(response.content.iter_chunked(_CHUNK)):
                self._count_truncated(log)
                await self.queue.put(batch)
        finally:
            response.release()

    # --- scan -------------------------------------------------------------------------------

    async def window(self, start: float | None, end: float | None) -> AsyncIterator[list[RawLine]]:
        """Each selected running container's lines of [start, end], one container at a time."""
        async with await api_client(self.config) as api:
            self._api = api
            core = kclient.CoreV1Api(api)
            call, kwargs = self._list_call(core)
            body = await json_body(await call(**kwargs, _preload_content=False))
            for pod in body.get("items") or []:
                for container in running_containers(pod):
                    if self.config.containers and container not in self.config.containers:
                        continue
                    async for batch in self._window_stream((*pod_id(pod), container), start, end):
                        yield batch

    async def _window_stream(
        self, stream: StreamKey, start: float | None, end: float | None
    ) -> AsyncIterator[list[RawLine]]:
        position = Position(int(start * NS) if start else 0)
        log = PodLog(self.name, "/".join(stream), position, self.ctx.max_line_bytes)
        assert self._api is not None
        try:
            response = await log_body(self._api, log.request(*stream, follow=False))
        except ApiException as exc:
            if exc.status != 404:
                raise
            # listed as running, deleted before its log was asked for: it has nothing to add
            self.ctx.log.info(
                "Pod gone before its log was read.", source=self.name, stream=log.stream
            )
            return
        try:
            async for batch in log.read(response.content.iter_chunked(_CHUNK)):
                kept = [line for line in batch if end is None or (line.timestamp or 0) <= end]
                if kept:
                    yield kept
                self._count_truncated(log)
        finally:
            response.release()

    def _count_truncated(self, log: PodLog) -> None:
        if log.truncated:
            self.ctx.metrics.truncated_lines.labels(self.name).inc(log.truncated)
            log.truncated = 0
