"""[[sources]] type = "kubernetes": its config, importable without the Kubernetes client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from watcher.sources.base import Check, SourceContext

if TYPE_CHECKING:
    from watcher.sources.kubernetes.source import KubernetesSource

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True, slots=True, kw_only=True)
class KubernetesSourceConfig:
    """Pod logs of the pods a namespace and label selector pick, followed as pods come and go."""

    type: str = "kubernetes"
    name: str = "kubernetes"
    namespace: str = "default"  # "" = every namespace (needs a cluster-wide list/watch role)
    label_selector: str = ""  # e.g. "app=api,tier!=batch"
    containers: list[str] = field(default_factory=list)  # only these container names; [] = all
    auth: Literal["auto", "in_cluster", "kubeconfig"] = "auto"
    kubeconfig: str = ""  # kubeconfig path; "" = $KUBECONFIG or ~/.kube/config
    context: str = ""  # kubeconfig context; "" = its current-context
    service_account_dir: str = SERVICE_ACCOUNT_DIR  # token + ca.crt for in-cluster auth
    lookback: float = 300.0  # seconds of history read from pods already running at start
    watch_timeout: int = 300  # seconds one watch request lasts before it is renewed
    max_backoff: float = 60.0
    # a fleet reads it on one watcher at a time (a source lease: watcher/fleet/)
    shared: bool = False

    def validate(self) -> None:
        """Raise ValueError("key: problem") for values the API would refuse."""
        if self.lookback < 0:
            raise ValueError("lookback: must be 0 or more seconds")
        if not 1 <= self.watch_timeout <= 3600:
            raise ValueError("watch_timeout: must be 1 to 3600 seconds")
        if not self.max_backoff > 0:
            raise ValueError("max_backoff: must be greater than 0")
        if any(not c for c in self.containers):
            raise ValueError("containers: names must not be empty")

    async def probe(self) -> list[Check]:
        """`check-config --probe`: the credentials load and may list the selected pods."""
        from watcher.sources.probes import kubernetes_source

        return await kubernetes_source(self)

    def build(self, ctx: SourceContext) -> KubernetesSource:
        """The source; the Kubernetes client is imported only now."""
        self.validate()
        from watcher.sources.kubernetes.source import KubernetesSource

        return KubernetesSource(self, ctx)
