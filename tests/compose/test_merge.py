"""Several files, override files and extends: Compose's merge rules, located."""

from __future__ import annotations

from pathlib import Path

from declarun.stack.model import Mount, NetworkAttachment, PortBinding
from tests.compose.helpers import load, problems, project

BASE = """
services:
  web:
    image: busybox:1.36
    command: ["httpd", "-f"]
    environment: [A=1, B=2]
    ports: ["8080:80", "127.0.0.1:9000:9000"]
    volumes: ["data:/data", "logs:/logs"]
    cap_add: [NET_ADMIN]
    networks: {back: {aliases: [www]}}
    healthcheck: {test: ["CMD", "true"], interval: 5s}
    labels: {a: "1"}
volumes: {data: {}, logs: {}, other: {}}
networks: {back: {}}
"""

OVERRIDE = """
services:
  web:
    command: ["sleep", "1"]
    environment: {B: "two", C: "3"}
    ports: ["8080:80", "8443:443"]
    volumes: ["other:/data"]
    cap_add: [NET_ADMIN, SYS_TIME]
    networks: {back: {aliases: [api]}}
    healthcheck: {test: ["CMD", "false"]}
    labels: [b=2]
"""


def _check_merged(stack_web: object) -> None:
    from declarun.stack.model import Container

    assert isinstance(stack_web, Container)
    web = stack_web
    assert web.command == ("sleep", "1")  # replaced, not appended
    assert {k: v.value for k, v in web.env.items()} == {"A": "1", "B": "two", "C": "3"}
    assert web.ports == (  # unique by address, port and protocol
        PortBinding(container_port=80, host_port=8080),
        PortBinding(container_port=9000, host_port=9000, host_ip="127.0.0.1"),
        PortBinding(container_port=443, host_port=8443),
    )
    assert web.mounts == (  # unique by target: the later one takes the earlier's place
        Mount(type="volume", source="other", target="/data"),
        Mount(type="volume", source="logs", target="/logs"),
    )
    assert web.cap_add == ("NET_ADMIN", "SYS_TIME")
    assert web.networks == (NetworkAttachment(network="back", aliases=("www", "api")),)
    assert web.healthcheck is not None and web.healthcheck.test == ("CMD", "false")
    assert web.healthcheck.interval.total_seconds() == 5  # merged key by key
    assert dict(web.labels) == {"a": "1", "b": "2"}


def test_the_override_file_is_merged_by_default(tmp_path: Path) -> None:
    stack = load(tmp_path, {"compose.yaml": BASE, "compose.override.yaml": OVERRIDE})
    _check_merged(stack.containers["web"])


def test_docker_compose_names_find_their_override_too(tmp_path: Path) -> None:
    stack = load(tmp_path, {"docker-compose.yml": BASE, "docker-compose.override.yml": OVERRIDE})
    _check_merged(stack.containers["web"])


def test_named_files_are_merged_in_order_and_no_override_is_picked_then(tmp_path: Path) -> None:
    (tmp_path / "compose.override.yaml").write_text("services: {web: {user: nobody}}\n")
    (tmp_path / "prod.yaml").write_text(OVERRIDE)
    stack = load(tmp_path, {"compose.yaml": BASE}, extra_files=[tmp_path / "prod.yaml"])
    _check_merged(stack.containers["web"])
    assert stack.containers["web"].user is None
    assert load(tmp_path, {"compose.yaml": BASE}).containers["web"].user == "nobody"


def test_relative_paths_of_later_files_are_relative_to_the_project_directory(
    tmp_path: Path,
) -> None:
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "dev.yaml").write_text("services: {web: {volumes: ['./site:/www']}}\n")
    stack = load(
        tmp_path,
        {"compose.yaml": "services: {web: {image: busybox}}\n"},
        extra_files=[tmp_path / "env" / "dev.yaml"],
    )
    assert stack.containers["web"].mounts[0].source == str(tmp_path / "site")


def test_a_merged_value_points_into_the_file_that_set_it(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        {
            "compose.yaml": "services:\n  web:\n    image: busybox\n",
            "compose.override.yaml": "services:\n  web:\n    ports: ['99999:80']\n",
        },
    ) == [
        "compose.override.yaml:3:13: services.web.ports[0]: host port 99999 is out of range (1-65535)"
    ]


EXTENDED = """
services:
  base:
    env_file: ./common.env
    environment: {TZ: UTC, ROLE: base}
    volumes: ["./conf:/etc/app:ro"]
    build: ./app
"""


def test_extends_another_file_keeps_its_paths_relative_to_it(tmp_path: Path) -> None:
    (tmp_path / "lib" / "app").mkdir(parents=True)
    (tmp_path / "lib" / "app" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "lib" / "common.env").write_text("COMMON=1\n")
    stack = load(
        tmp_path,
        {
            "compose.yaml": """
                services:
                  web:
                    extends: {file: lib/base.yml, service: base}
                    environment: {ROLE: web}
                  cli:
                    extends: web
                    command: ["sh"]
                """,
            "lib/base.yml": EXTENDED,
        },
    )
    for name in ("web", "cli"):
        web = stack.containers[name]
        assert {k: v.value for k, v in web.env.items()} == {
            "COMMON": "1",
            "TZ": "UTC",
            "ROLE": "web",
        }
        assert web.env_files[0].path == tmp_path / "lib" / "common.env"
        assert web.mounts[0].source == str(tmp_path / "lib" / "conf")
        image = stack.images[web.image]
        assert image.build is not None and image.build.context == tmp_path / "lib" / "app"
    assert stack.containers["cli"].command == ("sh",)


def test_extends_problems(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        services:
          a: {image: busybox, extends: b}
          b: {image: busybox, extends: {service: a}}
          c: {image: busybox, extends: {service: wbe}}
          web: {image: busybox}
          d: {image: busybox, extends: {file: missing.yml, service: x}}
        """,
    ) == [
        "compose.yaml:2:23: services.a.extends: extends loops: a -> b -> a",
        "compose.yaml:4:42: services.c.extends: no service 'wbe' to extend; did you mean 'web'?",
        "compose.yaml:6:39: services.d.extends.file: no such file 'missing.yml'",
    ]


def test_env_files_compose_reads_differently_are_written_out(tmp_path: Path) -> None:
    (tmp_path / "plain.env").write_text("A=1\nB='two'\n")
    (tmp_path / "fancy.env").write_text('C="a\\tb" # comment\nD=${A:-x}\n')
    loaded = project(
        tmp_path,
        """
        services:
          web:
            image: busybox
            env_file: [plain.env, fancy.env, {path: gone.env, required: false}]
            environment: {B: override}
        """,
    )
    web = loaded.stack.containers["web"]
    assert [f.path.name for f in web.env_files] == ["plain.env"]
    assert {k: v.value for k, v in web.env.items()} == {
        "A": "1",
        "B": "override",
        "C": "a\tb",
        "D": "x",
    }
    assert loaded.translation.data["containers"]["web"]["env_file"] == [str(tmp_path / "plain.env")]


def test_a_very_long_extends_chain_is_refused_not_recursed(tmp_path: Path) -> None:
    # Written last-first, so resolving the first service walks the whole chain.
    lines = [f"  s{i}: {{extends: s{i - 1}}}" for i in range(3000, 0, -1)]
    text = "\n".join(["services:", *lines, "  s0: {image: busybox}"]) + "\n"
    found = problems(tmp_path, text)
    assert "compose.yaml:2971:9: services.s31.extends: extends chain longer than 32" in found
    shallow = [f"  s{i}: {{extends: s{i - 1}}}" for i in range(20, 0, -1)]
    assert load(tmp_path, "\n".join(["services:", *shallow, "  s0: {image: busybox}"]) + "\n")
