"""``declarun render --format kubernetes``: manifests that Kubernetes' own schemas accept
(PyPI ``kubernetes-validate``, offline, strict, for the version the renderer states), the
mapping field by field, and a report of everything not expressed."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from declarun.observe.swarm import host_files
from declarun.render.kubernetes import KUBERNETES_VERSION, Manifests, kubernetes_manifests
from declarun.stack.pipeline import LoadOptions, load_stack

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*/stack.yaml"))


def validate(manifests: Manifests) -> None:
    assert manifests.documents
    for document in manifests.documents:
        kubernetes_validate.validate(document, f"{KUBERNETES_VERSION}.0", strict=True)


def by_kind(manifests: Manifests, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in manifests.documents if d["kind"] == kind}


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_every_example_validates_against_the_kubernetes_schemas(example: Path) -> None:
    stack = load_stack(example, LoadOptions(environ={}))
    validate(kubernetes_manifests(stack, files=host_files(stack)))
    validate(kubernetes_manifests(stack, files=host_files(stack), reveal_secrets=True))


KITCHEN = """
stack: shop
images:
  app: {ref: "registry.example/shop/app:2", pull: always}
volumes:
  data: {}
networks:
  back: {internal: true, subnet: 10.9.0.0/24}
containers:
  db:
    image: app
    replicas: 2
    volumes: ["data:/var/lib/db", "./conf/db.conf:/etc/db.conf:ro", "/scratch"]
    env:
      DB_PASSWORD: {value: hunter2, secret: true}
      LOG: debug
    env_file: app.env
    networks:
      back: {aliases: [database]}
    healthcheck: {test: "pg_isready", interval: 2s, timeout: 3s, retries: 4, start_period: 5s}
    user: postgres
    stop_signal: SIGINT
  migrate:
    image: app
    run: once
    restart: on-failure:2
    depends_on: {db: {condition: healthy}}
    networks: {back: {ipv4_address: 10.9.0.5}}
  web:
    image: app
    replicas: 1
    command: ["serve", "--port", "80"]
    entrypoint: ["/bin/app"]
    ports: ["127.0.0.1:8080:80", "9000:9000/udp"]
    depends_on: {db: {condition: healthy}, migrate: {condition: completed}}
    resources: {cpus: 0.5, memory: 64m, pids: 10}
    read_only: true
    cap_drop: [ALL]
    mounts: [{type: tmpfs, target: /tmp, tmpfs: {size: 16m}}]
    restart: unless-stopped
    labels: {team: shop, "bad key!": x}
    placement:
      constraints: [node.labels.zone==a, node.hostname!=n9, node.role==manager, node.platform.arch==x86_64]
      spread: [node.labels.rack]
      max_replicas_per_node: 1
    networks: [back, default]
"""


@pytest.fixture
def kitchen(tmp_path: Path) -> Manifests:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "db.conf").write_text("max_connections=10\n")
    (tmp_path / "app.env").write_text("REGION=eu\nLOG=info\n")
    (tmp_path / "stack.yaml").write_text(KITCHEN)
    stack = load_stack(tmp_path / "stack.yaml", LoadOptions(environ={}))
    return kubernetes_manifests(stack, files=host_files(stack), reveal_secrets=True)


def test_a_full_stack_validates(kitchen: Manifests) -> None:
    validate(kitchen)


def test_workload_kinds_follow_the_container(kitchen: Manifests) -> None:
    assert set(by_kind(kitchen, "StatefulSet")) == {"shop-db"}  # it mounts a named volume
    assert set(by_kind(kitchen, "Deployment")) == {"shop-web"}
    job = by_kind(kitchen, "Job")["shop-migrate"]["spec"]
    assert job["completions"] == 1 and job["backoffLimit"] == 2
    assert job["template"]["spec"]["restartPolicy"] == "OnFailure"
    web = by_kind(kitchen, "Deployment")["shop-web"]
    assert web["spec"]["replicas"] == 1
    labels = web["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "declarun"
    assert labels["app.kubernetes.io/part-of"] == "shop"
    assert labels["team"] == "shop"
    assert web["metadata"]["annotations"] == {"bad key!": "x"}


def test_the_pod_carries_probes_resources_and_security(kitchen: Manifests) -> None:
    db = by_kind(kitchen, "StatefulSet")["shop-db"]["spec"]
    assert db["serviceName"] == "db"
    main = db["template"]["spec"]["containers"][0]
    assert main["readinessProbe"] == {
        "exec": {"command": ["sh", "-c", "pg_isready"]},
        "periodSeconds": 2,
        "timeoutSeconds": 3,
        "failureThreshold": 4,
        "initialDelaySeconds": 5,
    }
    assert main["livenessProbe"] == main["readinessProbe"]
    web = by_kind(kitchen, "Deployment")["shop-web"]["spec"]["template"]["spec"]
    container = web["containers"][0]
    assert container["command"] == ["/bin/app"] and container["args"] == ["serve", "--port", "80"]
    assert container["imagePullPolicy"] == "Always"
    assert container["resources"]["limits"] == {"cpu": "500m", "memory": str(64 * 1024 * 1024)}
    assert container["securityContext"] == {
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert web["volumes"] == [
        {"name": "mount-0", "emptyDir": {"medium": "Memory", "sizeLimit": str(16 * 1024 * 1024)}}
    ]


def test_env_files_secrets_and_config_files(kitchen: Manifests) -> None:
    db = by_kind(kitchen, "StatefulSet")["shop-db"]["spec"]["template"]["spec"]
    container = db["containers"][0]
    secret = by_kind(kitchen, "Secret")["shop-db-env"]
    assert secret["stringData"] == {"DB_PASSWORD": "hunter2"}
    assert {"name": "LOG", "value": "debug"} in container["env"]  # env: wins over the file
    assert {
        "name": "DB_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "shop-db-env", "key": "DB_PASSWORD"}},
    } in container["env"]
    (env_from,) = container["envFrom"]
    env_map = by_kind(kitchen, "ConfigMap")[env_from["configMapRef"]["name"]]
    assert env_map["data"] == {"REGION": "eu"}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/etc/db.conf")
    assert mount["subPath"] == "db.conf" and mount["readOnly"]
    volume = next(v for v in db["volumes"] if v["name"] == mount["name"])
    conf = by_kind(kitchen, "ConfigMap")[volume["configMap"]["name"]]
    assert list(conf["data"].values()) == ["max_connections=10\n"]
    claim = next(v for v in db["volumes"] if "persistentVolumeClaim" in v)
    assert claim["persistentVolumeClaim"]["claimName"] in by_kind(kitchen, "PersistentVolumeClaim")


def test_services_for_names_aliases_and_published_ports(kitchen: Manifests) -> None:
    services = by_kind(kitchen, "Service")
    assert services["db"]["spec"]["clusterIP"] == "None"
    assert services["database"]["spec"]["selector"] == services["db"]["spec"]["selector"]
    assert "migrate" not in services  # a job serves nothing
    published = services["shop-web-published"]["spec"]
    assert published["type"] == "LoadBalancer"
    assert [(p["port"], p["targetPort"], p["protocol"]) for p in published["ports"]] == [
        (8080, 80, "TCP"),
        (9000, 9000, "UDP"),
    ]


def test_depends_on_and_placement(kitchen: Manifests) -> None:
    web = by_kind(kitchen, "Deployment")["shop-web"]["spec"]["template"]["spec"]
    assert [c["name"] for c in web["initContainers"]] == ["wait-for-db"]
    assert "nslookup db" in web["initContainers"][0]["command"][2]
    assert web["nodeSelector"] == {"zone": "a", "kubernetes.io/arch": "amd64"}
    terms = web["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchExpressions"] == [
        {"key": "kubernetes.io/hostname", "operator": "NotIn", "values": ["n9"]}
    ]
    spreads = {s["topologyKey"]: s for s in web["topologySpreadConstraints"]}
    assert spreads["rack"]["whenUnsatisfiable"] == "ScheduleAnyway"
    assert spreads["kubernetes.io/hostname"]["maxSkew"] == 1


def test_what_cannot_be_expressed_is_reported(kitchen: Manifests) -> None:
    where = {note.where for note in kitchen.notes}
    assert {
        "containers.web.ports[0]",  # the host address
        "containers.migrate.networks[0].ipv4_address",
        "containers.web.resources.pids",
        "containers.db.stop_signal",
        "containers.db.user",
        "containers.web.depends_on[1]",  # a job
        "containers.web.placement.constraints[2]",  # node.role
        "containers.web.labels.bad key!",
        "networks.back",
        "networks.back.internal",
        "networks.back.subnet",
        "containers.db.volumes",  # replicas sharing a claim
        "containers.db.restart",  # pods always restart
    } <= where


def test_the_cli_writes_one_file_per_manifest_and_masks_secrets_on_stdout(
    tmp_path: Path,
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "db.conf").write_text("x=1\n")
    (tmp_path / "app.env").write_text("REGION=eu\n")
    (tmp_path / "stack.yaml").write_text(KITCHEN)
    env = {**os.environ, "NO_COLOR": "1"}
    command = [sys.executable, "-m", "declarun", "render", "stack.yaml", "--format", "kubernetes"]
    shown = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "hunter2" not in shown.stdout
    assert "Not expressed in Kubernetes" in shown.stderr
    assert "containers.web.ports[0]" in shown.stderr
    docs = list(yaml.safe_load_all(shown.stdout))
    assert len(docs) == len([d for d in docs if d])
    written = subprocess.run(
        [*command, "-o", "out"], cwd=tmp_path, capture_output=True, text=True, env=env
    )
    assert written.returncode == 0, written.stderr
    files = sorted((tmp_path / "out").iterdir())
    assert len(files) == len(docs)
    secret = next(f for f in files if "-secret-" in f.name)
    assert "hunter2" in secret.read_text()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    for path in files:
        (document,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        kubernetes_validate.validate(document, f"{KUBERNETES_VERSION}.0", strict=True)
    revealed = subprocess.run([*command, "--reveal-secrets"], cwd=tmp_path, capture_output=True, text=True, env=env)  # fmt: skip
    assert revealed.returncode == 0 and "hunter2" in revealed.stdout
    # -o names a directory for manifests: a file there is refused, not overwritten.
    refused = subprocess.run([*command, "-o", "app.env"], cwd=tmp_path, capture_output=True, text=True, env=env)  # fmt: skip
    assert refused.returncode == 2 and "not a directory" in refused.stderr
    assert (tmp_path / "app.env").read_text() == "REGION=eu\n"


def test_external_and_renamed_volumes_init_hosts_and_dns(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(
        """
stack: shop
volumes:
  certs: {external: true, engine_name: tls-certs}
  data: {engine_name: shop-data}
networks:
  proxy: {external: true}
containers:
  web:
    image: busybox:1.36
    volumes: ["certs:/certs", "data:/data"]
    networks: [proxy]
    init: true
    extra_hosts: ["db.local:10.0.0.5", "cache.local:10.0.0.5", "v6.local:::1"]
    dns: ["1.1.1.1"]
"""
    )
    stack = load_stack(tmp_path / "stack.yaml", LoadOptions(environ={}))
    manifests = kubernetes_manifests(stack, files=host_files(stack))
    validate(manifests)
    assert set(by_kind(manifests, "PersistentVolumeClaim")) == {"shop-data"}  # not the external
    pod = by_kind(manifests, "StatefulSet")["shop-web"]["spec"]["template"]["spec"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims == {"tls-certs", "shop-data"}
    assert pod["hostAliases"] == [
        {"ip": "10.0.0.5", "hostnames": ["db.local", "cache.local"]},
        {"ip": "::1", "hostnames": ["v6.local"]},
    ]
    assert pod["dnsConfig"] == {"nameservers": ["1.1.1.1"]}
    where = {note.where for note in manifests.notes}
    assert {"volumes.certs.external", "containers.web.init", "containers.web.dns"} <= where
    assert "networks.proxy" in where
