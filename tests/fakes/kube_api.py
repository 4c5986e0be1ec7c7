"""A fake Kubernetes API server on 127.0.0.1: the pod list/watch and pod log endpoints.

- `GET /api/v1/namespaces/{ns}/pods` and `GET /api/v1/pods`: a `PodList` whose
  `metadata.resourceVersion` is the store's; `labelSelector` (equality: `k=v`, `k==v`, `k!=v`,
  comma = and); with `watch=true`, a chunked stream of `{"type": ADDED|MODIFIED|DELETED,
  "object": Pod}` lines after `resourceVersion`, ending after `timeoutSeconds`; a resourceVersion
  older than the kept history gets the `ERROR` event with a 410 `Status` (expired).
- `GET /api/v1/namespaces/{ns}/pods/{name}/log`: `container` (required when the pod has more
  than one: 400 otherwise, as the API does), `timestamps=true` (an RFC3339Nano prefix and a
  space), `sinceTime` (RFC3339; applied at second precision, as metav1.Time carries it),
  `follow=true` (chunked; open until the pod is deleted, the container stops, or the test drops
  the connections).
- Bearer-token auth: 401 with a `Status` body without the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TOKEN = "fake-kube-token"


def rfc3339_nano(ns: int) -> str:
    """Nanoseconds since the epoch as the API writes log timestamps."""
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def parse_rfc3339_seconds(value: str) -> int:
    """An RFC3339 time as whole seconds since the epoch (fractions dropped, as metav1.Time)."""
    base = value.split(".")[0].rstrip("Z")
    when = dt.datetime.fromisoformat(base).replace(tzinfo=dt.UTC)
    return int(when.timestamp())


@dataclass
class Pod:
    """One pod: its labels, and per container the (ns timestamp, line) log."""

    namespace: str
    name: str
    labels: dict[str, str]
    containers: dict[str, list[tuple[int, str]]]
    running: set[str] = field(default_factory=set)
    version: int = 0

    def resource(self) -> dict[str, Any]:
        """The Pod object as the API returns it."""
        statuses = [
            {
                "name": c,
                "ready": c in self.running,
                "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}
                if c in self.running
                else {"terminated": {"exitCode": 0}},
            }
            for c in self.containers
        ]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "resourceVersion": str(self.version),
                "uid": f"uid-{self.namespace}-{self.name}",
            },
            "spec": {"containers": [{"name": c, "image": "app"} for c in self.containers]},
            "status": {
                "phase": "Running" if self.running else "Succeeded",
                "containerStatuses": statuses,
            },
        }


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Equality-based label selectors: `a=b,c!=d`."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key.strip()) == value.strip():
                return False
            continue
        key, _, value = term.replace("==", "=").partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


class FakeKube:
    """The API's state, the control methods tests use, and the aiohttp app."""

    def __init__(self) -> None:
        self.pods: dict[tuple[str, str], Pod] = {}
        self.version = 1
        self.history: list[tuple[int, str, dict[str, Any]]] = []  # (rv, type, object)
        self.history_floor = 0  # events at or below this rv are forgotten (410 for older)
        self.changed = asyncio.Event()
        self.log_requests: list[dict[str, str]] = []
        self.drops = 0  # bumped by drop_connections(): open streams end
        self.clock_ns = 1_700_000_000 * 1_000_000_000

    # --- control -------------------------------------------------------------------------

    def add_pod(
        self, namespace: str, name: str, labels: dict[str, str], containers: list[str]
    ) -> None:
        pod = Pod(namespace, name, labels, {c: [] for c in containers}, set(containers))
        self.pods[(namespace, name)] = pod
        self._event("ADDED", pod)

    def delete_pod(self, namespace: str, name: str) -> None:
        pod = self.pods.pop((namespace, name))
        pod.running.clear()
        self._event("DELETED", pod)

    def write(
        self, namespace: str, pod: str, container: str, *lines: str, step: int = 1000
    ) -> None:
        """Append lines to a container's log, each `step` ns after the previous one."""
        log = self.pods[(namespace, pod)].containers[container]
        for line in lines:
            self.clock_ns += step
            log.append((self.clock_ns, line))
        self._wake()

    def drop_connections(self) -> None:
        """End every open watch and log stream, as an API server restart would."""
        self.drops += 1
        self._wake()

    def expire_history(self) -> None:
        """Forget past watch events: a watch from an older resourceVersion gets 410."""
        self.history_floor = self.version
        self.history.clear()

    def _event(self, kind: str, pod: Pod) -> None:
        self.version += 1
        pod.version = self.version
        self.history.append((self.version, kind, pod.resource()))
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    # --- HTTP ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        app.router.add_get("/api/v1/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods", self._pods)
        app.router.add_get("/api/v1/namespaces/{ns}/pods/{name}/log", self._log)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response(status(401, "Unauthorized", "Unauthorized"), status=401)
        return await handler(request)

    def _selected(self, request: web.Request) -> list[Pod]:
        ns = request.match_info.get("ns")
        selector = request.query.get("labelSelector", "")
        return [
            p
            for p in self.pods.values()
            if (ns is None or p.namespace == ns) and selector_matches(selector, p.labels)
        ]

    async def _pods(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") in ("true", "1", "True"):
            return await self._watch(request)
        body = {
            "apiVersion": "v1",
            "kind": "PodList",
            "metadata": {"resourceVersion": str(self.version)},
            "items": [p.resource() for p in self._selected(request)],
        }
        return web.json_response(body)

    async def _watch(self, request: web.Request) -> web.StreamResponse:
        ns = request.match_info.get("ns")
        selector = request.query.get("labelSelector", "")
        since = int(request.query.get("resourceVersion") or self.version)
        timeout = float(request.query.get("timeoutSeconds") or 30)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if since < self.history_floor:
            gone = status(410, "Expired", f"too old resource version: {since}")
            await response.write(json.dumps({"type": "ERROR", "object": gone}).encode() + b"\n")
            return response
        drops = self.drops
        deadline = asyncio.get_running_loop().time() + timeout
        while self.drops == drops:
            for rv, kind, obj in [e for e in self.history if e[0] > since]:
                since = rv
                meta = obj["metadata"]
                if (ns is None or meta["namespace"] == ns) and selector_matches(
                    selector, meta["labels"]
                ):
                    line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                    await response.write(line)
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await self._wait(left):
                break
        return response

    async def _wait(self, timeout: float) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def _log(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["ns"], request.match_info["name"])
        self.log_requests.append({"pod": key[1], **request.query})
        pod = self.pods.get(key)
        if pod is None:
            return web.json_response(
                status(404, "NotFound", f'pods "{key[1]}" not found'), status=404
            )
        container = request.query.get("container") or ""
        if not container and len(pod.containers) == 1:
            container = next(iter(pod.containers))
        if container not in pod.containers:
            message = f"a container name must be specified for pod {pod.name}"
            return web.json_response(status(400, "BadRequest", message), status=400)
        since = request.query.get("sinceTime")
        floor = parse_rfc3339_seconds(since) * 1_000_000_000 if since else 0
        stamps = request.query.get("timestamps") == "true"
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        sent = 0
        drops = self.drops
        log = pod.containers[container]
        while True:
            for ts, text in log[sent:]:
                if ts >= floor:
                    prefix = f"{rfc3339_nano(ts)} " if stamps else ""
                    await response.write(f"{prefix}{text}\n".encode())
            sent = len(log)
            follow = request.query.get("follow") == "true"
            alive = self.pods.get(key) is pod and container in pod.running
            if not follow or not alive or self.drops != drops:
                return response
            await self._wait(30)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as a cluster's API server has."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "ca.crt", directory / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextlib.asynccontextmanager
async def serving(kube: FakeKube, tls: tuple[Path, Path] | None = None) -> AsyncIterator[str]:
    """Serve `kube` on a loopback port (https with `tls` = (cert, key)); its base URL."""
    context = None
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*tls)
    runner = web.AppRunner(kube.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        kube.drop_connections()
        await runner.cleanup()


@pytest.fixture
async def fake_kube() -> AsyncIterator[tuple[FakeKube, str]]:
    """A FakeKube on a loopback port, and its base URL."""
    kube = FakeKube()
    async with serving(kube) as url:
        yield kube, url
