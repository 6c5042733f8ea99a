"""The real single-node Kubernetes of ../shared/localcluster (`lc`), driven for the cluster test.

Nothing here is used by `make test`: only `make cluster-test` brings a cluster up. Every command
runs with KUBECONFIG and PATH from `lc env`, so kubectl and helm talk to that cluster.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.settings import REPO_ROOT

__all__ = ["LC_ENV", "LocalCluster", "default_lc", "wait_for", "why_localcluster_cannot_run"]

LC_ENV = "LOCALCLUSTER_LC"


def default_lc() -> Path:
    """`lc`: $LOCALCLUSTER_LC, else ../shared/localcluster/lc beside the clone."""
    configured = os.environ.get(LC_ENV)
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "localcluster" / "lc"


def why_localcluster_cannot_run(lc: Path) -> str | None:
    """Why this machine cannot run the cluster test, or None when it can."""
    if not lc.is_file():
        return f"{lc} is absent: the cluster test needs ../shared/localcluster (or {LC_ENV})"
    if os.geteuid() != 0:
        return "the cluster test needs root: localcluster runs containerd, runc, mounts and iptables"
    if shutil.which("go") is None and not Path("/usr/local/go/bin/go").exists():
        return "the cluster test needs Go (localcluster builds Kubernetes and the operator with it)"
    return None


@dataclass
class LocalCluster:
    """`lc` and the kubectl/helm of its cluster."""

    lc: Path
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def run_lc(self, *args: str, timeout: float = 3600) -> None:
        """Run an lc command, its output streaming to ours."""
        subprocess.run([str(self.lc), *args], check=True, timeout=timeout, env=self.env)

    def is_running(self) -> bool:
        """Whether the cluster runs: `lc status` lists kube-apiserver as running. (Its exit code
        is 0 as soon as anything runs, containerd alone included, which an image build starts.)"""
        done = subprocess.run(
            [str(self.lc), "status"], capture_output=True, text=True, env=self.env, check=False
        )
        return any(line.split()[:2] == ["kube-apiserver", "running"] for line in done.stdout.splitlines())

    def up(self) -> None:
        """`lc up`, which also reuses a running cluster. On a kept cluster, lc waits until every
        CoreDNS and local-path-provisioner pod is Ready, finished ones included: a pod the kubelet
        evicted (disk pressure) or that ended with the node makes that wait time out. Such pods
        are deleted and `lc up` runs once more."""
        try:
            self.run_lc("up")
        except subprocess.CalledProcessError:
            self.load_env()
            for namespace in ("kube-system", "local-path-storage"):
                self.kubectl(
                    "delete", "pods", "-n", namespace, "--field-selector=status.phase!=Running",
                    check=False,
                )  # fmt: skip
            self.run_lc("up")
        self.load_env()

    def disk_usage(self) -> Any:
        """shutil.disk_usage of the file system under lc's state (kubelet root, images, volumes)."""
        home = Path(self.env.get("LOCALCLUSTER_HOME", "/var/lib/localcluster"))
        return shutil.disk_usage(home if home.exists() else home.parent)

    def load_env(self) -> None:
        """Take KUBECONFIG and PATH from `lc env` (`export NAME=value` statements)."""
        out = subprocess.run([str(self.lc), "env"], check=True, capture_output=True, text=True).stdout
        for statement in out.replace("\n", ";").split(";"):
            words = shlex.split(statement)
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                name, _, value = words[1].partition("=")
                self.env[name] = value.replace("$PATH", self.env.get("PATH", ""))
        os.environ["KUBECONFIG"] = self.env["KUBECONFIG"]  # for the kubernetes client

    def run(
        self, *command: str, timeout: float = 900, check: bool = True, env: dict[str, str] | None = None
    ) -> str:
        """Run a command against the cluster (env: variables added to the cluster's); return its
        stdout; raise with its output on failure."""
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT,
            env={**self.env, **(env or {})},
        )  # fmt: skip
        if check and done.returncode != 0:
            raise RuntimeError(
                f"{shlex.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        return done.stdout

    def run_showing_output(self, *command: str, timeout: float = 3600) -> None:
        """Run a long command (a build) with its output streaming to ours, as its progress."""
        subprocess.run(command, check=True, timeout=timeout, cwd=REPO_ROOT, env=self.env)

    def kubectl(self, *args: str, **kwargs: Any) -> str:
        return self.run("kubectl", *args, **kwargs)

    def helm(self, *args: str, **kwargs: Any) -> str:
        return self.run("helm", *args, **kwargs)

    def get(self, *args: str, namespace: str = "default") -> dict[str, Any]:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", "-n", namespace, "-o", "json", *args))

    def pods(self, selector: str, namespace: str = "default") -> list[dict[str, Any]]:
        return self.get("pods", "-l", selector, namespace=namespace)["items"]

    def live_pods(self, selector: str, namespace: str = "default") -> list[dict[str, Any]]:
        """The selected pods that have not ended: an evicted or completed pod of an earlier run
        stays listed (phase Failed or Succeeded) until it is deleted."""
        return [
            p
            for p in self.pods(selector, namespace)
            if p["status"].get("phase") not in ("Failed", "Succeeded")
        ]

    @contextlib.contextmanager
    def port_forward(self, target: str, port: int, namespace: str = "default") -> Iterator[int]:
        """`kubectl port-forward target <free local port>:port` while the block runs; yield the local port."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            local_port = probe.getsockname()[1]
        forward = subprocess.Popen(
            ["kubectl", "port-forward", "-n", namespace, target, f"{local_port}:{port}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            yield local_port
        finally:
            forward.terminate()
            forward.wait(10)

    def route_service_from_host(self, service: str, namespace: str) -> str:
        """Let host processes reach a Service's ClusterIP; return the `ip route` spec to delete.

        localcluster puts a blackhole route on the whole Service CIDR, so that a packet to a Service
        IP that kube-proxy has not programmed yet never leaves the machine. It also makes connect()
        from the host itself fail with EINVAL before kube-proxy's DNAT can apply, and the
        kube-apiserver runs on the host: it cannot call an admission webhook's Service (the Spark
        operator's). A /32 route to that one ClusterIP, on the interface of the pod network, lets
        the DNAT happen; the packet then goes to the webhook pod. Nothing leaves the machine.
        """
        cluster_ip = self.get("service", service, namespace=namespace)["spec"]["clusterIP"]
        pod_ip = wait_for(
            f"{namespace}/{service} has a ready endpoint",
            lambda: [
                address["ip"]
                for subset in self.get("endpoints", service, namespace=namespace).get("subsets") or []
                for address in subset.get("addresses") or []
            ],
            timeout_seconds=120,
        )[0]
        words = self.run("ip", "-o", "route", "get", pod_ip).split()
        device, source = words[words.index("dev") + 1], words[words.index("src") + 1]
        spec = [f"{cluster_ip}/32", "dev", device, "src", source]
        self.run("ip", "route", "replace", *spec)
        return " ".join(spec)

    def run_pod(self, image: str, command: list[str], timeout_seconds: float = 300) -> str:
        """Run a one-off pod to completion (image loaded, never pulled); return its log."""
        name = f"check-{uuid.uuid4().hex[:8]}"
        self.kubectl(
            "run", name, "--image", image, "--image-pull-policy=Never", "--restart=Never", "--command",
            "--", *command,
        )  # fmt: skip
        try:
            wait_for(
                f"pod {name} done",
                lambda: self.get("pod", name)["status"]["phase"] in ("Succeeded", "Failed"),
                timeout_seconds,
            )
            log = self.kubectl("logs", name)
            if self.get("pod", name)["status"]["phase"] != "Succeeded":
                raise RuntimeError(f"pod {name} failed:\n{log}")
            return log
        finally:
            self.kubectl("delete", "pod", name, "--wait=false", check=False)


def wait_for(what: str, probe: Callable[[], Any], timeout_seconds: float, poll_seconds: float = 3) -> Any:
    """Poll probe() until it returns something truthy; TimeoutError naming `what` and its last answer."""
    deadline = time.monotonic() + timeout_seconds
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(poll_seconds)
    raise TimeoutError(f"{what}: not after {timeout_seconds:.0f}s; last: {last!r}"[:3000])
