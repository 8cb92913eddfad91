"""The Compose front end end to end: Compose files in, the stack model (or located problems in
Compose's terms, or warnings) out."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from declarun.stack.model import Dependency, Mount, NetworkAttachment, PortBinding
from tests.compose.helpers import container, load, problems, warnings


def test_a_service_becomes_a_container_of_a_stack_named_after_the_project(tmp_path: Path) -> None:
    stack = load(
        tmp_path,
        """
        services:
          web:
            image: busybox:1.36
            command: httpd -f -p "80"
        """,
    )
    assert stack.name == "t"
    web = stack.containers["web"]
    assert web.image == "busybox:1.36" and stack.images["busybox:1.36"].implicit
    assert web.command == ("httpd", "-f", "-p", "80")
    assert web.networks == (NetworkAttachment(network="default"),)
    assert stack.networks["default"].implicit
    assert stack.source_file == tmp_path / "compose.yaml"


def test_every_supported_service_field(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "pw.txt").write_text("s3cret")
    (tmp_path / "app.conf").write_text("x=1")
    stack = load(
        tmp_path,
        """
        services:
          web:
            image: busybox:1.36
            entrypoint: ["/bin/sh", "-c"]
            command: ["echo hi"]
            environment: {A: 1, B: "two", C: null, D: ""}
            working_dir: /srv
            user: "1000:1000"
            hostname: web1
            ports: ["8080:80", "127.0.0.1::81/udp", {target: 90, published: "9090", protocol: tcp}]
            volumes:
              - data:/data
              - ./site:/www:ro
              - /cache
              - {type: tmpfs, target: /scratch, tmpfs: {size: 64m, mode: 0o1777}}
            tmpfs: ["/run:size=16m,mode=1777"]
            secrets: [pw]
            configs: [{source: conf, target: /etc/app.conf}]
            networks: {back: {aliases: [www], ipv4_address: 172.28.0.10}}
            depends_on: {cache: {condition: service_healthy}}
            healthcheck: {test: "wget -q localhost", interval: 5s, timeout: 3s, retries: 4, start_period: 1s}
            restart: on-failure:5
            deploy: {resources: {limits: {cpus: "0.5", memory: 256M, pids: 100}}}
            labels: [team=web, tier]
            stop_signal: SIGINT
            stop_grace_period: 1m30s
            read_only: true
            cap_add: [NET_ADMIN]
            cap_drop: [ALL]
            init: true
            extra_hosts: ["db.local:10.0.0.5", "v6.local=::1"]
            dns: 1.1.1.1
            profiles: [web]
          db:
            image: busybox
            healthcheck: {disable: true}
            scale: 2
          cache:
            image: busybox
            healthcheck: {test: ["CMD", "true"]}
        volumes: {data: {driver_opts: {type: tmpfs}, labels: {k: v}}}
        networks:
          back:
            internal: true
            driver_opts: {com.docker.network.bridge.name: br-back}
            ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1}]}
            labels: [role=back]
        secrets: {pw: {file: ./pw.txt}}
        configs: {conf: {file: ./app.conf}}
        """,
        profiles=frozenset({"web"}),
    )
    web = stack.containers["web"]
    assert web.entrypoint == ("/bin/sh", "-c") and web.command == ("echo hi",)
    assert {k: v.value for k, v in web.env.items()} == {"A": "1", "B": "two", "D": ""}
    assert (web.working_dir, web.user, web.hostname) == ("/srv", "1000:1000", "web1")
    assert web.ports == (
        PortBinding(container_port=80, host_port=8080),
        PortBinding(container_port=81, host_ip="127.0.0.1", protocol="udp"),
        PortBinding(container_port=90, host_port=9090),
    )
    assert web.mounts == (
        Mount(type="volume", source="data", target="/data"),
        Mount(type="bind", source=str(tmp_path / "site"), target="/www", read_only=True),
        Mount(type="volume", target="/cache"),
        Mount(type="tmpfs", target="/scratch", tmpfs_size=64 * 2**20, tmpfs_mode=0o1777),
        Mount(type="tmpfs", target="/run", tmpfs_size=16 * 2**20, tmpfs_mode=0o1777),
        Mount(
            type="bind", source=str(tmp_path / "pw.txt"), target="/run/secrets/pw", read_only=True
        ),
        Mount(
            type="bind", source=str(tmp_path / "app.conf"), target="/etc/app.conf", read_only=True
        ),
    )
    assert web.networks == (
        NetworkAttachment(network="back", aliases=("www",), ipv4_address="172.28.0.10"),
    )
    assert web.depends_on == (Dependency(container="cache", condition="healthy"),)
    assert web.healthcheck is not None and web.healthcheck.test == (
        "CMD-SHELL",
        "wget -q localhost",
    )
    assert (web.healthcheck.interval, web.healthcheck.retries) == (timedelta(seconds=5), 4)
    assert (web.restart.name, web.restart.max_retries) == ("on-failure", 5)
    assert (web.resources.cpus, web.resources.memory, web.resources.pids) == (0.5, 256 * 2**20, 100)
    assert dict(web.labels) == {"team": "web", "tier": ""}
    assert (web.stop_signal, web.stop_grace_period) == ("SIGINT", timedelta(seconds=90))
    assert web.read_only and web.init and (web.cap_add, web.cap_drop) == (("NET_ADMIN",), ("ALL",))
    assert web.extra_hosts == ("db.local:10.0.0.5", "v6.local:::1") and web.dns == ("1.1.1.1",)
    assert web.profiles == ("web",)
    db = stack.containers["db"]
    assert db.healthcheck is not None and db.healthcheck.disabled and db.replicas == 2
    data = stack.volumes["data"]
    assert (dict(data.driver_opts), dict(data.labels)) == ({"type": "tmpfs"}, {"k": "v"})
    back = stack.networks["back"]
    assert (back.internal, back.subnet, back.gateway, dict(back.labels)) == (
        True,
        "172.28.0.0/16",
        "172.28.0.1",
        {"role": "back"},
    )
    assert dict(back.driver_opts) == {"com.docker.network.bridge.name": "br-back"}


def test_yaml_is_read_as_docker_compose_reads_it_yaml_1_2(tmp_path: Path) -> None:
    web = container(tmp_path, "web", restart="no")
    assert web.restart.name == "no"
    stack = load(
        tmp_path,
        """
        services:
          web:
            image: busybox
            restart: no
            environment: {DEBUG: yes, SWITCH: off, REAL: true, OCTAL: 0o17, PORT: 22:22}
        """,
    )
    env = {k: v.value for k, v in stack.containers["web"].env.items()}
    assert env == {"DEBUG": "yes", "SWITCH": "off", "REAL": "true", "OCTAL": "15", "PORT": "22:22"}


def test_problems_are_located_and_named_in_compose_terms(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        services:
          web:
            image: busybox
            depend_on: [db]
            ports: ["80:80:80:80"]
          api:
            image: busybox
            volumes: ["nowhere:/data"]
            networks: [front]
            depends_on: [dbb]
          db:
            image: busybox
            ports: ["8080:80"]
          cache:
            image: busybox
            ports: ["8080:80"]
        """,
    ) == [
        "compose.yaml:4:5: services.web.depend_on: unknown field 'depend_on'; did you mean "
        "'depends_on'?",
        "compose.yaml:5:13: services.web.ports[0]: expected a port number, a port mapping such "
        'as "8080:80", or {target, published, host_ip, protocol}; got a string '
        "('80:80:80:80')",
        "compose.yaml:8:15: services.api.volumes[0]: unknown volume 'nowhere'; declare it under "
        "volumes:, or use ./path for a bind mount",
        "compose.yaml:9:16: services.api.networks.front: unknown network 'front'",
        "compose.yaml:10:18: services.api.depends_on.dbb: unknown container 'dbb'; did you mean "
        "'db'?",
        "compose.yaml:16:13: services.cache.ports: host port 0.0.0.0:8080/tcp is already "
        "published by 'db'",
    ]


def test_a_service_needs_an_image_or_a_build(tmp_path: Path) -> None:
    assert problems(tmp_path, 'services:\n  web:\n    command: ["true"]\n') == [
        "compose.yaml:2:3: services.web: a service needs an image or a build; add image: with "
        "a reference such as busybox:1.36"
    ]


def test_broken_files_get_located_errors(tmp_path: Path) -> None:
    (broken,) = problems(tmp_path, "services: [web\n")
    assert broken.startswith("compose.yaml:2:1: invalid YAML: the [...] list that opens at line 1")
    assert problems(tmp_path, "- just\n- a list\n") == [
        "compose.yaml:1:1: a Compose file must be a mapping with services: in it"
    ]
    assert problems(tmp_path, "services:\n  web:\n    image: !reset busybox\n") == [
        "compose.yaml:3:12: services.web.image: unsupported YAML tag '!reset'"
    ]


def test_unsupported_fields_are_warnings_located_at_their_key(tmp_path: Path) -> None:
    text = """
        services:
          web:
            image: busybox
            privileged: true
            network_mode: host
            container_name: www
            volumes: ["./a:/a:z"]
            x-note: extension fields are fine
            deploy: {placement: {constraints: [node.role==manager]}}
        volumes:
          data: {external: true}
        """
    (tmp_path / "a").mkdir()
    assert warnings(tmp_path, text) == [
        "compose.yaml:4:5: services.web.privileged: not supported, ignored: privileged "
        "containers are not modelled; use cap_add",
        "compose.yaml:5:5: services.web.network_mode: not supported, ignored: containers always "
        "join the stack's networks (the default network when none is listed)",
        "compose.yaml:6:5: services.web.container_name: supported differently: declarun names the "
        "container <project>-<service>; the name becomes a network alias, so other containers "
        "still reach it by that name",
        "compose.yaml:7:15: services.web.volumes[0]: SELinux relabelling (:z) is not supported, "
        "ignored",
    ]
    web = load(tmp_path, text).containers["web"]
    assert web.networks == (NetworkAttachment(network="default", aliases=("www",)),)
    strict = problems(tmp_path, text, strict=True)
    assert len(strict) == 4 and all(p.endswith("(an error with --strict)") for p in strict)


def test_project_name_from_flag_environment_file_or_directory(tmp_path: Path) -> None:
    directory = tmp_path / "My Shop.v2"
    directory.mkdir()
    text = "services: {web: {image: busybox}}\n"
    assert load(directory, text, project_name=None).name == "myshopv2"
    named = "name: shop\nservices: {web: {image: busybox}}\n"
    assert load(directory, named, project_name=None).name == "shop"
    environ = {"COMPOSE_PROJECT_NAME": "fromenv"}
    assert load(directory, named, project_name=None, environ=environ).name == "fromenv"
    (directory / ".env").write_text("COMPOSE_PROJECT_NAME=fromdotenv\n")
    assert load(directory, named, project_name=None).name == "fromdotenv"
    assert load(directory, named, project_name="flag", environ=environ).name == "flag"
    assert problems(directory, named, project_name="Bad Name") == [
        "compose.yaml:1:1: invalid project name 'Bad Name': it must contain only lowercase "
        "letters, digits, '_' and '-', and start with a letter or digit"
    ]


def test_profiles_and_compose_profiles(tmp_path: Path) -> None:
    text = """
        services:
          web: {image: busybox}
          debug: {image: busybox, profiles: [debug]}
          admin:
            image: busybox
            profiles: [tools]
            depends_on: {debug: {condition: service_started, required: false}}
        """
    assert set(load(tmp_path, text).containers) == {"web"}
    assert set(load(tmp_path, text, profiles=frozenset({"debug"})).containers) == {"web", "debug"}
    tools = load(tmp_path, text, environ={"COMPOSE_PROFILES": "tools"})
    assert set(tools.containers) == {"web", "admin"} and not tools.containers["admin"].depends_on
    both = load(tmp_path, text, environ={"COMPOSE_PROFILES": "tools,debug"})
    assert both.containers["admin"].depends_on == (Dependency(container="debug"),)


def test_completion_condition_makes_a_one_shot_job(tmp_path: Path) -> None:
    text = """
        services:
          migrate: {image: busybox, restart: "no"}
          app:
            image: busybox
            depends_on: {migrate: {condition: service_completed_successfully}}
        """
    stack = load(tmp_path, text)
    assert stack.containers["migrate"].run == "once"
    assert stack.containers["app"].depends_on == (
        Dependency(container="migrate", condition="completed"),
    )
    assert problems(tmp_path, text.replace('restart: "no"', "restart: always")) == [
        "compose.yaml:2:38: services.migrate.restart: restart: always would never let it "
        "complete, yet other services wait for it with condition: "
        "service_completed_successfully; use restart: on-failure to retry a failed run"
    ]


def test_build_pull_policy_and_platform_declare_an_image_named_after_the_service(
    tmp_path: Path,
) -> None:
    for context, dockerfile in (("app", "Dockerfile.dev"), ("tool", "Dockerfile")):
        (tmp_path / context).mkdir()
        (tmp_path / context / dockerfile).write_text("FROM busybox:1.36 AS run\nARG VERSION\n")
    stack = load(
        tmp_path,
        """
        services:
          app:
            build: {context: ./app, dockerfile: Dockerfile.dev, args: [VERSION=2], target: run}
            image: shop/app:dev
          tool:
            build: ./tool
          base:
            image: busybox
            pull_policy: always
            platform: linux/arm64
          other:
            image: app
        """,
    )
    app, tool, base = stack.images["app-image"], stack.images["tool"], stack.images["base"]
    assert stack.containers["app"].image == "app-image"  # 'app' is another service's reference
    assert app.ref == "shop/app:dev" and app.build is not None
    assert (app.build.context, app.build.dockerfile, dict(app.build.args), app.build.target) == (
        tmp_path / "app",
        "Dockerfile.dev",
        {"VERSION": "2"},
        "run",
    )
    assert tool.ref is None and tool.build is not None and tool.build.context == tmp_path / "tool"
    assert (base.ref, base.pull, base.platform) == ("busybox", "always", "linux/arm64")
    assert stack.images["app"].implicit


def test_build_labels_in_either_form_label_the_built_image(tmp_path: Path) -> None:
    for context in ("app", "tool"):
        (tmp_path / context).mkdir()
        (tmp_path / context / "Dockerfile").write_text("FROM busybox:1.36\n")
    stack = load(
        tmp_path,
        """
        services:
          app:
            build: {context: ./app, labels: {team: shop, tier: web}}
          tool:
            build: {context: ./tool, labels: ["team=ops", "bare"]}
        """,
    )
    app, tool = stack.images["app"].build, stack.images["tool"].build
    assert app is not None and dict(app.labels) == {"team": "shop", "tier": "web"}
    assert tool is not None and dict(tool.labels) == {"team": "ops", "bare": ""}


def test_replicas_and_resources_written_twice_must_agree(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        services:
          web:
            image: busybox
            scale: 2
            deploy: {replicas: 3, resources: {limits: {memory: 64m}}}
            mem_limit: 128m
        """,
    ) == [
        "compose.yaml:4:12: services.web.scale: 2 differs from deploy.replicas: 3; docker "
        "compose refuses two different values; keep one",
        "compose.yaml:6:16: services.web.mem_limit: '128m' differs from deploy.resources.limits."
        "memory: '64m'; docker compose refuses two different values; keep one",
    ]


def test_secrets_and_configs_must_be_declared_and_from_files(tmp_path: Path) -> None:
    text = """
        services:
          web:
            image: busybox
            secrets: [pw, token]
        secrets:
          pw: {environment: PASSWORD}
        """
    assert problems(tmp_path, text) == [
        "compose.yaml:4:19: services.web.secrets[1]: undefined secret 'token'; declare it under "
        "the top-level secrets:"
    ]
    fixed = text.replace("[pw, token]", "[pw]")
    assert warnings(tmp_path, fixed) == [
        "compose.yaml:4:15: services.web.secrets[0]: secret 'pw' is not from a file: not "
        "supported, not mounted",
        "compose.yaml:6:8: secrets.pw.environment: not supported, ignored: declarun cannot write "
        "a variable into a file; use file:",
    ]


def test_external_and_named_volumes_and_networks(tmp_path: Path) -> None:
    stack = load(
        tmp_path,
        """
        services:
          web:
            image: busybox
            volumes: ["data:/data", "cache:/cache", "old:/old"]
            networks: [proxy, default]
        volumes:
          data: {external: true}
          cache: {name: "shared-${SUFFIX:-cache}"}
          old: {external: {name: legacy-data}}
        networks:
          proxy: {external: true, name: traefik_default}
        """,
    )
    data, cache, old = (stack.volumes[n] for n in ("data", "cache", "old"))
    assert (data.external, data.engine_name) == (True, None)
    assert (cache.external, cache.engine_name) == (False, "shared-cache")
    assert (old.external, old.engine_name) == (True, "legacy-data")
    proxy = stack.networks["proxy"]
    assert (proxy.external, proxy.engine_name) == (True, "traefik_default")
    assert problems(
        tmp_path,
        """
        services: {web: {image: busybox, networks: [proxy]}}
        networks:
          proxy: {external: true, driver: overlay}
        """,
    ) == [
        "compose.yaml:3:35: networks.proxy.driver: an external network is used as it is: "
        "declarun does not set its driver; remove the field, or remove external: true to let "
        "declarun make and own it"
    ]
