"""A local Kubernetes control plane on loopback: `ops cluster up | status | down`.

etcd, kube-apiserver (Pod Security admission on, RBAC, serving and client certificates made here with
`cryptography`), kube-controller-manager, kube-scheduler and kwok, which stands in for the nodes and kubelets: two
fake Nodes with room for the platform, pods that become Ready, Job pods that complete, and Ingresses that get an
address (the part an ingress controller would play). PersistentVolumeClaims bind through a default StorageClass
served by the controller-manager's host-path provisioner.

All of it from the toolchain `ops engine build` made, on free loopback ports, with its state, certificates, logs and
kubeconfig under `<local dir>/cluster/` (`.local/cluster/kubeconfig`). `down` stops every process it recorded, checks
that their ports are free again, and removes everything but the certificates.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from commerce_ops.engine.toolchain import Toolchain, ToolchainError
from commerce_ops.local.layout import LocalLayout
from commerce_ops.local.ports import free_port, listening_ports
from commerce_ops.local.processes import ProcessRecord, spawn, terminate
from commerce_ops.local.secrets import rsa_key_pair

# The kube context Pulumi.dev.yaml names (kubeContext): with KUBECONFIG pointing here, `pulumi up --stack dev` (and
# the pr-<N> stacks, which inherit it) deploy to this cluster without a config change. A test keeps the two equal.
CONTEXT = "commerce-dev"
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
NODES = ("kwok-node-0", "kwok-node-1")
NODE_CAPACITY = {"cpu": "32", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi"}
STORAGE_CLASS = "standard"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
# kwok's own stages (copied from its module by `ops engine build`) plus ours for Ingress addresses.
KWOK_STAGES = ("node-initialize", "node-heartbeat-with-lease", "pod-ready", "pod-complete", "pod-delete")
INGRESS_STAGE = {
    "apiVersion": "kwok.x-k8s.io/v1alpha1",
    "kind": "Stage",
    "metadata": {"name": "ingress-address"},
    "spec": {
        "resourceRef": {"apiGroup": "networking.k8s.io/v1", "kind": "Ingress"},
        "selector": {
            "matchExpressions": [
                {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"},
                {"key": ".status.loadBalancer.ingress", "operator": "DoesNotExist"},
            ]
        },
        "next": {"statusTemplate": "loadBalancer:\n  ingress:\n  - ip: 127.0.0.1\n"},
    },
}


class ClusterError(RuntimeError):
    """One line naming what failed and where its log is."""


@dataclass(frozen=True)
class ClusterLayout:
    root: Path

    @classmethod
    def resolve(cls, local_dir: str | Path | None = None) -> ClusterLayout:
        return cls(LocalLayout.resolve(local_dir).root / "cluster")

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"


@dataclass
class ClusterState:
    toolchain: str
    server: str
    processes: dict[str, ProcessRecord] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        data = {
            "toolchain": self.toolchain,
            "server": self.server,
            "ports": self.ports,
            "processes": {n: r.to_json() for n, r in self.processes.items()},
        }
        path.write_text(json.dumps(data, indent=2, sort_keys=True))

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        return cls(
            toolchain=data["toolchain"],
            server=data["server"],
            ports=data["ports"],
            processes={n: ProcessRecord(**r) for n, r in data["processes"].items()},
        )


# ---------------------------------------------------------------------------------------------------------- pki


def _name(common: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def _certificate(
    subject, key, issuer, issuer_key, *, ca=False, server_names=(), client=False
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        usage = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
        purposes = (
            [x509.ExtendedKeyUsageOID.CLIENT_AUTH] if client else [x509.ExtendedKeyUsageOID.SERVER_AUTH]
        )
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    builder = builder.add_extension(usage, critical=True)
    if server_names:
        names = [
            x509.IPAddress(ipaddress.ip_address(n)) if n[0].isdigit() else x509.DNSName(n)
            for n in server_names
        ]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def ensure_pki(folder: Path) -> None:
    """A CA, the apiserver's serving certificate, an admin client certificate and the service-account keys."""
    if all((folder / f).is_file() for f in ("ca.crt", "apiserver.crt", "admin.crt", "sa.key", "sa.pub")):
        return
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    ca_key = _key()
    ca_name = _name("commerce-local-ca")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key = _key()
    server_names = (
        "127.0.0.1",
        SERVICE_IP,
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    )
    server = _certificate(_name("kube-apiserver"), server_key, ca_name, ca_key, server_names=server_names)
    admin_key = _key()
    admin = _certificate(_name("kubernetes-admin", "system:masters"), admin_key, ca_name, ca_key, client=True)
    sa_private, sa_public = rsa_key_pair()
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
        "apiserver.crt": server.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(server_key),
        "admin.crt": admin.public_bytes(serialization.Encoding.PEM),
        "admin.key": _pem_key(admin_key),
        "sa.key": sa_private.encode(),
        "sa.pub": sa_public.encode(),
    }
    for name, data in files.items():
        path = folder / name
        path.write_bytes(data)
        os.chmod(path, 0o600)


def write_kubeconfig(layout: ClusterLayout, server: str) -> None:
    pki = layout.pki
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
        ],
        "users": [
            {
                "name": "admin",
                "user": {"client-certificate": str(pki / "admin.crt"), "client-key": str(pki / "admin.key")},
            }
        ],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "admin"}}],
        "current-context": CONTEXT,
    }
    layout.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
    os.chmod(layout.kubeconfig, 0o600)


# ------------------------------------------------------------------------------------------------------ the API


def api_client(layout: ClusterLayout, server: str, timeout: float = 10.0) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(layout.pki / "ca.crt"))
    context.load_cert_chain(str(layout.pki / "admin.crt"), str(layout.pki / "admin.key"))
    return httpx.Client(base_url=server, verify=context, timeout=timeout)


def _wait(
    what: str, check: Callable[[], bool], timeout: float, log: Path | None, alive: Callable[[], bool]
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ClusterError(f"{what} exited during start-up; see {log}")
        try:
            if check():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise ClusterError(f"{what} not ready after {timeout:.0f}s; see {log}")


def bootstrap_objects() -> list[dict]:
    """What a fresh cluster needs before a stack: the fake Nodes and a default StorageClass."""
    nodes = [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/agent": "",
                },
            },
            "status": {"allocatable": NODE_CAPACITY, "capacity": NODE_CAPACITY},
        }
        for name in NODES
    ]
    storage = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": "kubernetes.io/host-path",
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }
    return [*nodes, storage]


# ------------------------------------------------------------------------------------------------- processes


class Cluster:
    def __init__(self, chain: Toolchain, layout: ClusterLayout, say: Callable[[str], None] = print) -> None:
        self.chain = chain
        self.layout = layout
        self.say = say

    def state(self) -> ClusterState | None:
        return ClusterState.load(self.layout.state_file)

    def running(self) -> bool:
        state = self.state()
        return state is not None and all(state.processes[n].alive for n in COMPONENTS if n in state.processes)

    def _start(self, state: ClusterState, name: str, argv: list[str], port: int) -> ProcessRecord:
        popen, record = spawn(
            name, argv, dict(os.environ), self.layout.log(name), cwd=self.layout.root, port=port
        )
        state.processes[name] = record
        state.save(self.layout.state_file)
        return record

    def up(self, timeout: float = 120.0) -> ClusterState:
        if self.running():
            state = self.state()
            assert state is not None
            self.say(f"already up: {state.server} (kubeconfig {self.layout.kubeconfig})")
            return state
        if self.state() is not None:
            self.down(quiet=True)
        missing = [t for t in (*COMPONENTS, "kubectl") if not self.chain.tool(t).is_file()]
        if missing:
            raise ToolchainError(f"the toolchain has no {', '.join(missing)}: run `ops engine build`")
        layout = self.layout
        layout.root.mkdir(parents=True, exist_ok=True)
        for folder in (layout.etcd_data, layout.volumes, layout.logs):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        ensure_pki(layout.pki)
        ports = {
            name: free_port()
            for name in (
                "etcd",
                "etcd-peer",
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "kwok",
            )
        }
        server = f"https://127.0.0.1:{ports['kube-apiserver']}"
        state = ClusterState(toolchain=str(self.chain.home), server=server, ports=ports)
        write_kubeconfig(layout, server)
        started = time.monotonic()
        try:
            self._start_all(state, timeout)
        except BaseException:
            self.down(quiet=True)
            raise
        self.say(f"cluster up in {time.monotonic() - started:.1f}s: {server}, kubeconfig {layout.kubeconfig}")
        return state

    def _start_all(self, state: ClusterState, timeout: float) -> None:
        layout, pki, ports, tool = self.layout, self.layout.pki, state.ports, self.chain.tool
        etcd_url = f"http://127.0.0.1:{ports['etcd']}"
        peer_url = f"http://127.0.0.1:{ports['etcd-peer']}"
        etcd = self._start(
            state,
            "etcd",
            [
                str(tool("etcd")),
                "--name=local",
                f"--data-dir={layout.etcd_data}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
            ports["etcd"],
        )
        _wait(
            "etcd",
            lambda: httpx.get(f"{etcd_url}/health", timeout=2).json().get("health") == "true",
            timeout,
            layout.log("etcd"),
            lambda: etcd.alive,
        )
        apiserver = self._start(
            state,
            "kube-apiserver",
            [
                str(tool("kube-apiserver")),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={ports['kube-apiserver']}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                # On by default since 1.25; named so the cluster's promise does not rest on a default.
                "--enable-admission-plugins=PodSecurity,DefaultStorageClass,ResourceQuota,LimitRanger",
                # Privileged pods are up to each namespace's Pod Security labels, as on a real cluster.
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--v=1",
            ],
            ports["kube-apiserver"],
        )
        with api_client(layout, state.server, timeout=5) as api:
            _wait(
                "kube-apiserver",
                lambda: api.get("/readyz").status_code == 200,
                timeout,
                layout.log("kube-apiserver"),
                lambda: apiserver.alive,
            )
        kubeconfig = f"--kubeconfig={layout.kubeconfig}"
        common = [kubeconfig, f"--authentication-kubeconfig={layout.kubeconfig}"]
        common += [f"--authorization-kubeconfig={layout.kubeconfig}", "--bind-address=127.0.0.1"]
        common += ["--leader-elect=false", "--kube-api-qps=500", "--kube-api-burst=1000", "--v=1"]
        self._start(
            state,
            "kube-controller-manager",
            [
                str(tool("kube-controller-manager")),
                *common,
                f"--secure-port={ports['kube-controller-manager']}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--enable-hostpath-provisioner=true",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
            ],
            ports["kube-controller-manager"],
        )
        self._start(
            state,
            "kube-scheduler",
            [str(tool("kube-scheduler")), *common, f"--secure-port={ports['kube-scheduler']}"],
            ports["kube-scheduler"],
        )
        stages = self.chain.home / "kwok" / "stages.yaml"
        if not stages.is_file():
            raise ToolchainError(f"{stages} is missing: run `ops engine build`")
        kwok_config = layout.root / "kwok.yaml"
        kwok_config.write_text(
            stages.read_text() + "\n---\n" + yaml.safe_dump(INGRESS_STAGE, sort_keys=False)
        )
        self._start(
            state,
            "kwok",
            [
                str(tool("kwok")),
                kubeconfig,
                f"--config={kwok_config}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{ports['kwok']}",
                "--node-ip=10.244.0.1",
                "--cidr=10.244.0.0/16",
                "--node-lease-duration-seconds=40",
            ],
            ports["kwok"],
        )
        manifest = layout.root / "bootstrap.yaml"
        manifest.write_text(yaml.safe_dump_all(bootstrap_objects(), sort_keys=False))
        self.kubectl("apply", "--server-side", "-f", str(manifest))
        with api_client(layout, state.server, timeout=5) as api:
            _wait(
                "the kwok nodes",
                lambda: all(_node_ready(api.get(f"/api/v1/nodes/{n}").json()) for n in NODES),
                timeout,
                layout.log("kwok"),
                lambda: state.processes["kwok"].alive,
            )
            _wait(
                "the default service account",
                lambda: api.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
                timeout,
                layout.log("kube-controller-manager"),
                lambda: state.processes["kube-controller-manager"].alive,
            )

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = [str(self.chain.tool("kubectl")), f"--kubeconfig={self.layout.kubeconfig}", *args]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {done.stderr.strip().splitlines()[-1:]}")
        return done

    def down(self, quiet: bool = False) -> list[str]:
        """Stops what the state file names; returns the names that had to be killed. Leaves no port taken."""
        state = self.state()
        if state is None:
            if not quiet:
                self.say("no local cluster is running")
            return []
        # Nodes' fakes first, then the control plane, the store last: nothing is left writing to a stopped etcd.
        order = [n for n in reversed(COMPONENTS) if n in state.processes]
        killed = []
        for name in order:
            killed += terminate([state.processes[name]], timeout=15)
        busy = listening_ports(list(state.ports.values()))
        deadline = time.monotonic() + 10
        while busy and time.monotonic() < deadline:
            time.sleep(0.1)
            busy = listening_ports(busy)
        for folder in (self.layout.etcd_data, self.layout.volumes):
            shutil.rmtree(folder, ignore_errors=True)
        self.layout.state_file.unlink(missing_ok=True)
        self.layout.kubeconfig.unlink(missing_ok=True)
        if busy:
            raise ClusterError(f"ports still in use after down: {busy}")
        if not quiet:
            extra = f" (killed after the grace period: {', '.join(killed)})" if killed else ""
            self.say(f"cluster down: {len(order)} processes stopped, ports free{extra}")
        return killed

    def status(self) -> list[dict]:
        state = self.state()
        if state is None:
            return []
        return [
            {"name": name, "pid": rec.pid, "port": rec.port, "alive": rec.alive, "log": rec.log_file}
            for name, rec in state.processes.items()
        ]


def _node_ready(node: dict) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
