"""The stack as Kubernetes manifests (``declarun render --format kubernetes``), for Kubernetes
:data:`KUBERNETES_VERSION`; apply them with ``kubectl apply --server-side -f DIR``.

Per container: a **Deployment** — a **StatefulSet** when it mounts named volumes, a **Job**
for ``run: once`` — with probes from its health check, resources, the security context,
placement as node selectors, affinity and spread constraints, and init containers that wait
for the Services of what it ``depends_on``; a headless **Service** by its name and one per
network alias (pods find each other by the names the stack uses, on any port), and a
**Service** of type LoadBalancer for its published ports. Per named volume a
**PersistentVolumeClaim**; env files and read-only bind-mounted files become **ConfigMaps**
(content-addressed names, so a changed file rolls the workload), secret values and secret
env files **Secrets**. Every object carries the ``app.kubernetes.io/*`` labels.

What Kubernetes cannot express as the stack writes it is a :class:`~declarun.render.
kubernetes_pod.Note` of the result, never dropped silently; ``specs/scale-out.md`` has the
whole mapping. Pure: the contents of bind-mounted files come in as values.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from declarun.plan.swarm_desired import HostFile
from declarun.render.kubernetes_pod import (
    LABEL_PREFIX,
    Note,
    Report,
    dns_label,
    placement,
    probe,
    resources,
    security_context,
)
from declarun.stack.model import Container, Mount, Stack
from declarun.stack.naming import image_reference

__all__ = [
    "KUBERNETES_VERSION",
    "WAIT_IMAGE",
    "Manifests",
    "kubernetes_manifests",
    "manifest_file_name",
]

#: The Kubernetes release the manifests are written for (and validated against in tests).
KUBERNETES_VERSION = "1.30"
#: The image of the init containers that wait for a dependency's Service.
WAIT_IMAGE = "busybox:1.36"
_PULL = {"missing": "IfNotPresent", "always": "Always", "never": "Never"}
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")  # fmt: skip
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_MASK = "***"


@dataclass(frozen=True, slots=True)
class Manifests:
    """The manifests of a stack, and what they could not express."""

    documents: tuple[dict[str, Any], ...]
    notes: tuple[Note, ...]
    version: str = KUBERNETES_VERSION

    def to_yaml(self) -> str:
        """Every manifest, as one multi-document YAML stream."""
        return "".join(f"---\n{_dump(doc)}" for doc in self.documents)


def manifest_file_name(index: int, document: Mapping[str, Any]) -> str:
    """``03-deployment-shop-web.yaml``: the file ``-o DIR`` writes a manifest to."""
    kind = str(document["kind"]).lower()
    return f"{index:02d}-{kind}-{document['metadata']['name']}.yaml"


def _dump(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)


def _short_hash(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()[:8]


class _Renderer:
    def __init__(
        self, stack: Stack, files: Mapping[str, tuple[HostFile, ...]], reveal: bool
    ) -> None:
        self.stack = stack
        self.files = files
        self.reveal = reveal
        self.report = Report()
        self.instance = dns_label(stack.name)
        self.config: list[dict[str, Any]] = []
        self.storage: list[dict[str, Any]] = []
        self.services: list[dict[str, Any]] = []
        self.workloads: list[dict[str, Any]] = []

    # -- names and labels ----------------------------------------------------------------------

    def name(self, *parts: str, limit: int = 63) -> str:
        return dns_label("-".join([self.stack.name, *parts]), limit)

    def claim_name(self, volume: str) -> str:
        """The claim of named volume ``volume``: ``<stack>-<name>``, or its ``engine_name``
        (an external volume's own name), made a DNS label."""
        declared = self.stack.volumes.get(volume)
        if declared is not None and (declared.engine_name or declared.external):
            return dns_label(declared.engine_name or volume)
        return self.name(volume)

    def labels(self, component: str) -> dict[str, str]:
        return {
            f"{LABEL_PREFIX}name": dns_label(component),
            f"{LABEL_PREFIX}instance": self.instance,
            f"{LABEL_PREFIX}component": dns_label(component),
            f"{LABEL_PREFIX}part-of": self.instance,
            f"{LABEL_PREFIX}managed-by": "declarun",
        }

    def selector(self, component: str) -> dict[str, str]:
        return {
            f"{LABEL_PREFIX}name": dns_label(component),
            f"{LABEL_PREFIX}instance": self.instance,
        }

    def user_labels(self, labels: Mapping[str, str], where: str) -> dict[str, str]:
        kept = {}
        for key, value in labels.items():
            if _LABEL_KEY.match(key) and _LABEL_VALUE.match(value):
                kept[key] = value
            else:
                self.report.add(
                    f"{where}.labels.{key}",
                    "not a valid Kubernetes label (63 characters of [A-Za-z0-9_.-]); kept "
                    "as an annotation",
                )
        return kept

    def annotations(self, labels: Mapping[str, str]) -> dict[str, str]:
        return {
            k: v for k, v in labels.items() if not (_LABEL_KEY.match(k) and _LABEL_VALUE.match(v))
        }

    def metadata(
        self, name: str, component: str, user: Mapping[str, str] | None = None, where: str = ""
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, "labels": self.labels(component)}
        if user:
            meta["labels"].update(self.user_labels(user, where))
            annotations = self.annotations(user)
            if annotations:
                meta["annotations"] = annotations
        return meta

    # -- stack-wide objects --------------------------------------------------------------------

    def volumes(self) -> None:
        for volume in self.stack.volumes.values():
            where = f"volumes.{volume.name}"
            if volume.external:
                self.report.add(
                    f"{where}.external",
                    f"the claim {self.claim_name(volume.name)} is used as it is: no claim is "
                    "written for it, so it must exist in the namespace",
                )
                continue
            if volume.driver != "local" or volume.driver_opts:
                self.report.add(
                    where,
                    f"driver {volume.driver} and its options are Docker's: the claim asks the "
                    "cluster's default storage class",
                )
            if volume.keep:
                self.report.add(
                    f"{where}.keep",
                    "kubectl delete removes the claim: protect it yourself (e.g. a storage "
                    "class with reclaimPolicy: Retain)",
                )
            self.storage.append(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": self.metadata(
                        self.claim_name(volume.name), volume.name, volume.labels, where
                    ),
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                }
            )

    def networks(self) -> None:
        for network in self.stack.networks.values():
            if network.implicit:
                continue
            where = f"networks.{network.name}"
            self.report.add(
                where,
                "Kubernetes has one flat pod network: pods find each other by Service names "
                "and aliases, but the network's separation is not kept (write NetworkPolicies)",
            )
            if network.internal:
                self.report.add(
                    f"{where}.internal", "no egress restriction is made (a NetworkPolicy would)"
                )
            if network.subnet is not None:
                self.report.add(f"{where}.subnet", "pod addresses are the cluster's to choose")
            if network.driver_opts:
                self.report.add(f"{where}.driver_opts", "Docker's network driver options: not kept")

    # -- one container -------------------------------------------------------------------------

    def env(self, container: Container, where: str) -> tuple[list[Any], list[Any]]:
        """(env entries, envFrom entries) of the container."""
        from_files: dict[str, str] = {}
        env_from: list[dict[str, Any]] = []
        for env_file in container.env_files:
            path = str(env_file.path)
            data = {
                key: value.value
                for key, value in container.env.items()
                if value.location.file == path
            }
            for key in data:
                from_files[key] = path
            base = posixpath.basename(path)
            name = self.name(base, _short_hash("\n".join(f"{k}={v}" for k, v in data.items())))
            if env_file.secret:
                self.secret(name, container.name, data)
                env_from.append({"secretRef": {"name": name}})
            else:
                self.config.append(
                    {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": self.metadata(name, container.name),
                        "data": data,
                    }
                )
                env_from.append({"configMapRef": {"name": name}})
        env: list[dict[str, Any]] = []
        secrets: dict[str, str] = {}
        secret_name = self.name(container.name, "env")
        for key, value in container.env.items():
            if from_files.get(key) == value.location.file:
                continue
            if value.secret:
                secrets[key] = value.value
                env.append(
                    {
                        "name": key,
                        "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}},
                    }
                )
            else:
                env.append({"name": key, "value": value.value})
        if secrets:
            self.secret(secret_name, container.name, secrets)
        return env, env_from

    def secret(self, name: str, component: str, data: Mapping[str, str]) -> None:
        shown = dict(data) if self.reveal else dict.fromkeys(data, _MASK)
        if not self.reveal:
            self.report.add(
                f"secrets.{name}",
                "secret values are masked on standard output; written with -o DIR",
            )
        self.config.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": self.metadata(name, component),
                "type": "Opaque",
                "stringData": shown,
            }
        )

    def bind_config(
        self, container: Container, mount: Mount, index: int, where: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """(volume, volumeMount) of a read-only bind mount made a ConfigMap."""
        assert mount.source is not None
        found = self.files.get(mount.source, ())
        usable = [f for f in found if f.data is not None]
        problems = [f.problem for f in found if f.data is None]
        if not usable or problems:
            why = "; ".join(p for p in problems if p) or "nothing to read there"
            self.report.add(f"{where}.mounts[{index}]", f"{mount.source}: {why}; not mounted")
            return None
        data: dict[str, str] = {}
        binary: dict[str, str] = {}
        items = []
        for number, entry in enumerate(usable):
            key = dns_label(posixpath.basename(entry.relative or mount.source), 200)
            key = f"{number}-{key}" if len(usable) > 1 else key
            assert entry.data is not None
            try:
                data[key] = entry.data.decode("utf-8")
            except UnicodeDecodeError:
                import base64

                binary[key] = base64.b64encode(entry.data).decode()
            items.append({"key": key, "path": entry.relative or posixpath.basename(mount.target)})
        digest = _short_hash(b"".join(f.data or b"" for f in usable))
        name = self.name(posixpath.basename(mount.source), digest)
        document: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": self.metadata(name, container.name),
        }
        if data:
            document["data"] = data
        if binary:
            document["binaryData"] = binary
        if not any(c["metadata"]["name"] == name for c in self.config):
            self.config.append(document)
        volume_name = f"config-{index}"
        volume = {"name": volume_name, "configMap": {"name": name, "items": items}}
        if found[0].relative == "":
            # A single file: mounted at its target path, not as a directory.
            return volume, {
                "name": volume_name,
                "mountPath": mount.target,
                "subPath": items[0]["path"],
                "readOnly": True,
            }
        return volume, {"name": volume_name, "mountPath": mount.target, "readOnly": True}

    def mounts(
        self, container: Container, where: str
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        volumes: list[dict[str, Any]] = []
        mounts: list[dict[str, Any]] = []
        for index, mount in enumerate(container.mounts):
            name = f"mount-{index}"
            if mount.type == "bind" and mount.read_only and mount.source is not None:
                made = self.bind_config(container, mount, index, where)
                if made is not None:
                    volumes.append(made[0])
                    mounts.append(made[1])
                continue
            if mount.type == "volume" and mount.source is not None:
                claim = self.claim_name(mount.source)
                volumes.append({"name": name, "persistentVolumeClaim": {"claimName": claim}})
            elif mount.type == "volume":
                volumes.append({"name": name, "emptyDir": {}})
            elif mount.type == "tmpfs":
                empty: dict[str, Any] = {"medium": "Memory"}
                if mount.tmpfs_size is not None:
                    empty["sizeLimit"] = str(mount.tmpfs_size)
                if mount.tmpfs_mode is not None:
                    self.report.add(
                        f"{where}.mounts[{index}].tmpfs.mode",
                        "an emptyDir's permission bits are Kubernetes' own",
                    )
                volumes.append({"name": name, "emptyDir": empty})
            else:
                self.report.add(
                    f"{where}.mounts[{index}]",
                    f"writable bind mount of {mount.source}: made a hostPath volume, the path "
                    "of whichever node the pod lands on",
                )
                volumes.append({"name": name, "hostPath": {"path": mount.source}})
            mounts.append({"name": name, "mountPath": mount.target, "readOnly": mount.read_only})
        return volumes, mounts

    def waits(self, container: Container, where: str) -> list[dict[str, Any]]:
        waits = []
        for index, dependency in enumerate(container.depends_on):
            target = self.stack.containers.get(dependency.container)
            if target is None:
                continue
            if dependency.condition == "completed" or target.run == "once":
                self.report.add(
                    f"{where}.depends_on[{index}]",
                    f"{dependency.container} is a job: Kubernetes starts no pod after a Job "
                    "completes; the pod starts without waiting for it",
                )
                continue
            service = dns_label(dependency.container)
            # The dependency's headless Service lists only ready pods (readiness comes from
            # its health check): resolving its name means started, or healthy.
            waits.append(
                {
                    "name": dns_label(f"wait-for-{dependency.container}"),
                    "image": WAIT_IMAGE,
                    "command": [
                        "sh",
                        "-c",
                        f"until nslookup {service} >/dev/null 2>&1; do sleep 1; done",
                    ],
                }
            )
        return waits

    def container_spec(self, container: Container, where: str) -> dict[str, Any]:
        image = self.stack.images[container.image]
        reference = image_reference(self.stack, image) or container.image
        spec: dict[str, Any] = {
            "name": dns_label(container.name),
            "image": reference,
            "imagePullPolicy": _PULL[image.pull],
        }
        if image.build is not None:
            self.report.add(
                f"images.{image.name}.build",
                f"Kubernetes pulls images: build and push it, the manifests use {reference}",
            )
        if image.platform is not None:
            self.report.add(
                f"images.{image.name}.platform",
                "pods run the image built for their node's platform",
            )
        if container.entrypoint is not None:
            spec["command"] = list(container.entrypoint)
        if container.command is not None:
            spec["args"] = list(container.command)
        if container.working_dir is not None:
            spec["workingDir"] = container.working_dir
        env, env_from = self.env(container, where)
        if env:
            spec["env"] = env
        if env_from:
            spec["envFrom"] = env_from
        ports: dict[tuple[int, str], dict[str, Any]] = {}
        for index, port in enumerate(container.ports):
            protocol = port.protocol.upper()
            ports[(port.container_port, protocol)] = {
                "containerPort": port.container_port,
                "protocol": protocol,
            }
            if port.host_ip is not None:
                self.report.add(
                    f"{where}.ports[{index}]",
                    f"host address {port.host_ip}: a Service listens on the cluster's "
                    "addresses; not kept",
                )
        if ports:
            spec["ports"] = list(ports.values())
        check = probe(container.healthcheck, where, self.report)
        if check is not None:
            spec["readinessProbe"] = check
            spec["livenessProbe"] = dict(check)
        limits = resources(container, where, self.report)
        if limits:
            spec["resources"] = limits
        context = security_context(container, where, self.report)
        if context:
            spec["securityContext"] = context
        if container.stop_signal not in (None, "SIGTERM", "15"):
            self.report.add(
                f"{where}.stop_signal",
                f"{container.stop_signal}: Kubernetes stops containers with SIGTERM",
            )
        return spec

    def pod(self, container: Container, where: str) -> dict[str, Any]:
        volumes, mounts = self.mounts(container, where)
        main = self.container_spec(container, where)
        if mounts:
            main["volumeMounts"] = mounts
        pod: dict[str, Any] = {
            "terminationGracePeriodSeconds": max(
                0, round(container.stop_grace_period.total_seconds())
            ),
        }
        waits = self.waits(container, where)
        if waits:
            pod["initContainers"] = waits
        pod["containers"] = [main]
        if volumes:
            pod["volumes"] = volumes
        if container.hostname is not None:
            if dns_label(container.hostname) == container.hostname:
                pod["hostname"] = container.hostname
            else:
                self.report.add(f"{where}.hostname", "not a DNS label: the pod's name is used")
        pod.update(
            placement(container.placement, self.selector(container.name), where, self.report)
        )
        if container.init:
            self.report.add(
                f"{where}.init",
                "no init process is added (shareProcessNamespace: true would make the pod's "
                "pause process PID 1, reaping zombies)",
            )
        if container.extra_hosts:
            by_address: dict[str, list[str]] = {}
            for entry in container.extra_hosts:
                host, _, address = entry.partition(":")
                by_address.setdefault(address, []).append(host)
            pod["hostAliases"] = [
                {"ip": address, "hostnames": hosts} for address, hosts in by_address.items()
            ]
        if container.dns:
            pod["dnsConfig"] = {"nameservers": list(container.dns)}
            self.report.add(
                f"{where}.dns",
                "the servers are listed after the cluster's own DNS (dnsPolicy ClusterFirst), "
                "which answers first",
            )
        for index, attachment in enumerate(container.networks):
            if attachment.ipv4_address is not None:
                self.report.add(
                    f"{where}.networks[{index}].ipv4_address",
                    "pod addresses are the cluster's to choose; not kept",
                )
        return pod

    def workload(self, container: Container) -> None:
        where = f"containers.{container.name}"
        pod = self.pod(container, where)
        template = {
            "metadata": {
                "labels": {
                    **self.labels(container.name),
                    **self.user_labels(container.labels, where),
                }
            },
            "spec": pod,
        }
        annotations = self.annotations(container.labels)
        if annotations:
            template["metadata"]["annotations"] = annotations
        name = self.name(container.name)
        meta = self.metadata(name, container.name, container.labels, where)
        restart = container.restart
        if container.run == "once":
            pod["restartPolicy"] = "OnFailure" if restart.name == "on-failure" else "Never"
            backoff = restart.max_retries if restart.name == "on-failure" else 0
            if restart.name == "on-failure" and not restart.max_retries:
                backoff = 6
                self.report.add(
                    f"{where}.restart", "on-failure without a limit: Kubernetes' default of 6"
                )
            spec: dict[str, Any] = {
                "completions": container.replicas,
                "parallelism": container.replicas,
                "backoffLimit": backoff,
                "template": template,
            }
            self.workloads.append(
                {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
            )
            return
        if restart.name in ("no", "on-failure"):
            self.report.add(
                f"{where}.restart",
                f"{restart.name}: the pods of a Deployment or StatefulSet are always restarted",
            )
        spec = {
            "replicas": container.replicas,
            "selector": {"matchLabels": self.selector(container.name)},
            "template": template,
        }
        named = [m for m in container.mounts if m.type == "volume" and m.source is not None]
        if named:
            spec["serviceName"] = dns_label(container.name)
            if container.replicas > 1:
                self.report.add(
                    f"{where}.volumes",
                    "the replicas share one claim per volume (as the containers of a stack "
                    "share a volume): it needs a ReadWriteMany storage class",
                )
            kind, api = "StatefulSet", "apps/v1"
        else:
            kind, api = "Deployment", "apps/v1"
            # A new pod must be ready before an old one goes, as on a Swarm (start-first).
            spec["strategy"] = {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            }
        self.workloads.append({"apiVersion": api, "kind": kind, "metadata": meta, "spec": spec})

    def services_of(self, container: Container) -> None:
        where = f"containers.{container.name}"
        selector = self.selector(container.name)
        names = [container.name]
        for attachment in container.networks:
            names.extend(attachment.aliases)
        for alias in dict.fromkeys(names):
            name = dns_label(alias)
            if name != alias:
                self.report.add(
                    f"{where}.networks", f"{alias!r} is known as {name!r} (a DNS label)"
                )
            if container.run == "once":
                continue  # a job's pods serve nothing others can wait for
            self.services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": self.metadata(name, container.name),
                    # Headless: the name resolves to the ready pods, on every port, as a
                    # container's name does on a Docker network.
                    "spec": {"clusterIP": "None", "selector": selector},
                }
            )
        published = []
        for port in container.ports:
            published.append(
                {
                    "name": f"{port.protocol}-{port.host_port or port.container_port}",
                    "protocol": port.protocol.upper(),
                    "port": port.host_port or port.container_port,
                    "targetPort": port.container_port,
                }
            )
        if published:
            self.services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": self.metadata(
                        self.name(container.name, "published"), container.name
                    ),
                    "spec": {"type": "LoadBalancer", "selector": selector, "ports": published},
                }
            )

    def render(self) -> Manifests:
        self.volumes()
        self.networks()
        for container in self.stack.containers.values():
            self.workload(container)
            self.services_of(container)
        documents = (*self.config, *self.storage, *self.services, *self.workloads)
        return Manifests(documents=tuple(documents), notes=tuple(self.report.notes))


def kubernetes_manifests(
    stack: Stack,
    *,
    files: Mapping[str, tuple[HostFile, ...]] | None = None,
    reveal_secrets: bool = False,
) -> Manifests:
    """The manifests of ``stack`` (see the module docstring). ``files`` are the contents of
    its read-only bind sources (``observe.swarm.host_files``); secret values are written only
    with ``reveal_secrets`` (``***`` otherwise, and said so)."""
    return _Renderer(stack, files or {}, reveal_secrets).render()
