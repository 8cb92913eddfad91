"""normalize(): every field, every short and long form, every default, every local problem.

The data passed in is what the JSON schema accepts; ``locate`` is a stand-in that names the
field path as the "file", so tests can see which path each object or problem is located at.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from declarun.errors import Problem, SourceLocation, StackError
from declarun.stack.model import (
    Container,
    Dependency,
    EnvValue,
    Healthcheck,
    Mount,
    NetworkAttachment,
    Placement,
    PortBinding,
    Resources,
    RestartPolicy,
    Stack,
)
from declarun.stack.normalize import normalize
from declarun.stack.normalize_common import FieldPath, format_path

BASE = Path("/srv/app")


def locate(path: FieldPath) -> SourceLocation:
    return SourceLocation(format_path(path) or "<root>", 1, 1)


def load(doc: dict[str, Any], base_dir: Path = BASE) -> Stack:
    return normalize({"stack": "t", **doc}, locate, base_dir=base_dir)


def container(raw: dict[str, Any], base_dir: Path = BASE) -> Container:
    return load({"containers": {"c": {"image": "busybox", **raw}}}, base_dir).containers["c"]


def problems(doc: dict[str, Any], base_dir: Path = BASE) -> list[Problem]:
    with pytest.raises(StackError) as info:
        normalize({"stack": "t", **doc}, locate, base_dir=base_dir)
    assert info.value.problems
    return info.value.problems


def container_problems(raw: dict[str, Any], base_dir: Path = BASE) -> list[tuple[str, str]]:
    found = problems({"containers": {"c": {"image": "busybox", **raw}}}, base_dir)
    return [(p.path, p.message + (f"; {p.hint}" if p.hint else "")) for p in found]


# --- stack, vars, images --------------------------------------------------------------------


def test_minimal_stack_has_every_default() -> None:
    stack = load({})
    assert stack.name == "t"
    assert dict(stack.vars) == {}
    assert not stack.images and not stack.volumes and not stack.networks and not stack.containers
    assert stack.location == SourceLocation("stack", 1, 1)
    assert stack.source_file == Path("stack")


def test_source_file_can_be_given() -> None:
    stack = normalize({"stack": "t"}, locate, base_dir=BASE, source_file=Path("/x/stack.yaml"))
    assert stack.source_file == Path("/x/stack.yaml")


def test_vars_are_deep_frozen_and_hashable() -> None:
    stack = load({"vars": {"n": 3, "items": [1, {"a": [2]}]}})
    assert stack.vars["n"] == 3
    assert stack.vars["items"] == (1, {"a": (2,)})
    hash(stack)


def test_named_image_defaults_and_fields() -> None:
    stack = load(
        {
            "images": {
                "app": {"ref": "busybox:1.36"},
                "pinned": {
                    "ref": "r/x@sha256:" + "a" * 64,
                    "pull": "never",
                    "platform": "linux/arm64/v8",
                },
            }
        }
    )
    app = stack.images["app"]
    assert (app.name, app.ref, app.pull, app.platform, app.build, app.implicit) == (
        "app",
        "busybox:1.36",
        "missing",
        None,
        None,
        False,
    )
    assert app.location == SourceLocation("images.app", 1, 1)
    pinned = stack.images["pinned"]
    assert (pinned.pull, pinned.platform) == ("never", "linux/arm64/v8")


def test_build_defaults_and_relative_context() -> None:
    stack = load({"images": {"app": {"build": {"context": "./svc/../app"}}}})
    image = stack.images["app"]
    assert image.ref is None
    assert image.build is not None
    assert image.build.context == Path("/srv/app/app")
    assert (image.build.dockerfile, dict(image.build.args), image.build.target) == (
        "Dockerfile",
        {},
        None,
    )


def test_build_all_fields() -> None:
    build = (
        load(
            {
                "images": {
                    "app": {
                        "ref": "app:dev",
                        "build": {
                            "context": "/abs/ctx",
                            "dockerfile": "docker/Dockerfile.prod",
                            "args": ["A=1", "B=x=y"],
                            "target": "runtime",
                        },
                    }
                }
            }
        )
        .images["app"]
        .build
    )
    assert build is not None
    assert build.context == Path("/abs/ctx")
    assert build.dockerfile == "docker/Dockerfile.prod"
    assert dict(build.args) == {"A": "1", "B": "x=y"}
    assert build.target == "runtime"


def test_build_as_a_string_is_the_context_and_is_located_there() -> None:
    image = load({"images": {"app": {"build": "./app"}}}).images["app"]
    assert image.build is not None
    assert image.build.context == Path("/srv/app/app")
    assert image.build.dockerfile_path == Path("/srv/app/app/Dockerfile")
    assert image.build.short_form
    where = SourceLocation("images.app.build", 1, 1)
    assert image.build.context_location == image.build.dockerfile_location == where


def test_build_labels_and_the_locations_of_its_fields() -> None:
    build = (
        load(
            {
                "images": {
                    "app": {
                        "build": {
                            "context": "ctx",
                            "dockerfile": "../Dockerfile.app",
                            "labels": ["team=shop"],
                        }
                    }
                }
            }
        )
        .images["app"]
        .build
    )
    assert build is not None
    assert dict(build.labels) == {"team": "shop"}
    assert build.dockerfile_path == Path("/srv/app/Dockerfile.app")  # outside the context
    assert build.context_location == SourceLocation("images.app.build.context", 1, 1)
    assert build.dockerfile_location == SourceLocation("images.app.build.dockerfile", 1, 1)
    # not written: located at the context, which names the directory it is looked for in
    assert build.target_location == build.context_location
    assert not build.short_form


def test_build_args_as_map_render_scalars_as_text() -> None:
    build = (
        load({"images": {"a": {"build": {"context": ".", "args": {"N": 3, "F": True, "E": None}}}}})
        .images["a"]
        .build
    )
    assert build is not None
    assert dict(build.args) == {"N": "3", "F": "true", "E": ""}


def test_image_without_ref_or_build_is_a_problem() -> None:
    [problem] = problems({"images": {"app": {"pull": "always"}}})
    assert problem.path == "images.app"
    assert "ref" in problem.message and "build" in problem.message


def test_literal_references_become_implicit_images_once_in_order_after_named() -> None:
    stack = load(
        {
            "images": {"busybox": {"ref": "busybox:1.36"}},
            "containers": {
                "a": {"image": "redis:7"},
                "b": {"image": "busybox"},
                "c": {"image": "redis:7"},
                "d": {"image": "127.0.0.1:5000/team/app@sha256:" + "b" * 64},
            },
        }
    )
    assert list(stack.images) == [
        "busybox",
        "redis:7",
        "127.0.0.1:5000/team/app@sha256:" + "b" * 64,
    ]
    redis = stack.images["redis:7"]
    assert (redis.name, redis.ref, redis.implicit, redis.pull) == (
        "redis:7",
        "redis:7",
        True,
        "missing",
    )
    assert redis.location == SourceLocation("containers.a.image", 1, 1)
    assert stack.containers["b"].image == "busybox"
    assert stack.images["busybox"].implicit is False


def test_image_reference_with_whitespace_is_a_problem() -> None:
    assert container_problems({"image": "bad image"}) == [
        ("containers.c.image", "'bad image' is neither an image name nor an image reference")
    ]


# --- volumes and networks -------------------------------------------------------------------


def test_volume_null_means_defaults() -> None:
    volume = load({"volumes": {"data": None}}).volumes["data"]
    assert (
        volume.name,
        volume.driver,
        dict(volume.driver_opts),
        dict(volume.labels),
        volume.keep,
    ) == ("data", "local", {}, {}, False)
    assert volume.location == SourceLocation("volumes.data", 1, 1)


def test_volume_fields() -> None:
    volume = load(
        {
            "volumes": {
                "data": {
                    "driver": "local",
                    "driver_opts": {"type": "tmpfs", "device": "tmpfs"},
                    "labels": ["team=core", "tier="],
                    "keep": True,
                }
            }
        }
    ).volumes["data"]
    assert dict(volume.driver_opts) == {"type": "tmpfs", "device": "tmpfs"}
    assert dict(volume.labels) == {"team": "core", "tier": ""}
    assert volume.keep is True


def test_network_null_means_defaults() -> None:
    network = load({"networks": {"back": None}}).networks["back"]
    assert (
        network.driver,
        network.subnet,
        network.gateway,
        network.internal,
        network.implicit,
    ) == ("bridge", None, None, False, False)


def test_network_fields_and_canonical_addresses() -> None:
    network = load(
        {
            "networks": {
                "back": {
                    "subnet": "fd00:0:0:0::/64",
                    "gateway": "fd00::0001",
                    "internal": True,
                    "labels": {"a": 1},
                    "driver_opts": ["mtu=1400"],
                }
            }
        }
    ).networks["back"]
    assert (network.subnet, network.gateway, network.internal) == ("fd00::/64", "fd00::1", True)
    assert dict(network.labels) == {"a": "1"}
    assert dict(network.driver_opts) == {"mtu": "1400"}


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"subnet": "10.0.0.1/24"}, "networks.n.subnet", "did you mean '10.0.0.0/24'?"),
        ({"subnet": "10.0.0.0/99"}, "networks.n.subnet", "not a subnet in CIDR form"),
        ({"subnet": "10.0.0.0/24", "gateway": "10.0.1.1"}, "networks.n.gateway", "not in subnet"),
        ({"gateway": "10.0.0.1"}, "networks.n.gateway", "needs a subnet"),
        ({"subnet": "10.0.0.0/24", "gateway": "10.0.0.999"}, "networks.n.gateway", "not an IP"),
    ],
)
def test_network_problems(raw: dict[str, Any], path: str, fragment: str) -> None:
    [problem] = problems({"networks": {"n": raw}})
    assert problem.path == path
    assert fragment in f"{problem.message}; {problem.hint}"


def test_default_network_is_synthesised_for_containers_without_networks() -> None:
    stack = load({"containers": {"a": {"image": "x"}, "b": {"image": "x", "networks": []}}})
    default = stack.networks["default"]
    assert default.implicit and default.driver == "bridge"
    assert stack.containers["a"].networks == (NetworkAttachment(network="default"),)
    assert stack.containers["b"].networks == (NetworkAttachment(network="default"),)


def test_no_default_network_when_every_container_chooses() -> None:
    stack = load({"networks": {"n": None}, "containers": {"a": {"image": "x", "networks": ["n"]}}})
    assert list(stack.networks) == ["n"]


def test_declared_default_network_is_used_as_declared() -> None:
    stack = load({"networks": {"default": {"internal": True}}, "containers": {"a": {"image": "x"}}})
    assert stack.networks["default"].internal and not stack.networks["default"].implicit


# --- container: command, env ----------------------------------------------------------------


def test_container_defaults() -> None:
    c = container({})
    assert c == Container(
        name="c",
        image="busybox",
        networks=(NetworkAttachment(network="default"),),
    )
    assert c.command is None and c.entrypoint is None and c.healthcheck is None
    assert c.restart == RestartPolicy(name="no", max_retries=0)
    assert c.resources == Resources()
    assert c.stop_grace_period == timedelta(seconds=10)
    assert (c.replicas, c.run, c.profiles, c.read_only) == (1, "service", (), False)
    assert c.location == SourceLocation("containers.c", 1, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("sh -c 'echo hi there'", ("sh", "-c", "echo hi there")),
        (["sleep", 10], ("sleep", "10")),
        ([], ()),
        ("", ()),
    ],
)
def test_command_and_entrypoint_forms(value: Any, expected: tuple[str, ...]) -> None:
    c = container({"command": value, "entrypoint": value})
    assert c.command == expected
    assert c.entrypoint == expected


def test_command_with_unclosed_quote_is_a_problem() -> None:
    [(path, message)] = container_problems({"command": "echo 'oops"})
    assert path == "containers.c.command"
    assert "cannot split command line" in message


def test_simple_fields() -> None:
    c = container(
        {
            "working_dir": "/app",
            "user": 1000,
            "hostname": "web-1",
            "read_only": True,
            "replicas": 0,
            "run": "once",
            "profiles": ["debug", "dev"],
            "labels": {"com.example.role": "web", "n": 1.5},
        }
    )
    assert (c.working_dir, c.user, c.hostname, c.read_only) == ("/app", "1000", "web-1", True)
    assert (c.replicas, c.run, c.profiles) == (0, "once", ("debug", "dev"))
    assert dict(c.labels) == {"com.example.role": "web", "n": "1.5"}


def test_env_map_values() -> None:
    env = container(
        {
            "env": {
                "A": "x",
                "N": 3,
                "F": 2.0,
                "B": False,
                "E": None,
                "S": {"value": "pw", "secret": True},
            }
        }
    ).env
    assert {k: v.value for k, v in env.items()} == {
        "A": "x",
        "N": "3",
        "F": "2",
        "B": "false",
        "E": "",
        "S": "pw",
    }
    assert env["S"].secret and not env["A"].secret
    assert env["A"].location == SourceLocation("containers.c.env.A", 1, 1)
    assert "pw" not in repr(env["S"])


def test_env_list_form() -> None:
    env = container({"env": ["A=1", "B=x=y", "C="]}).env
    assert {k: v.value for k, v in env.items()} == {"A": "1", "B": "x=y", "C": ""}
    assert env["B"].location == SourceLocation("containers.c.env[1]", 1, 1)


def test_env_list_item_without_equals_is_a_problem() -> None:
    assert container_problems({"env": ["A=1", "B"]}) == [
        ("containers.c.env[1]", "expected KEY=VALUE, got 'B'; write 'B=' for an empty value")
    ]


def test_env_file_is_read_with_digest_and_env_wins(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    first = tmp_path / "conf" / "base.env"
    first.write_text(
        "# comment\n\nA=from-base\nexport B = 'quoted value'\nC=\"dq\"\nD=x # not a comment\n"
        "E=\nF=a=b\n",
        encoding="utf-8",
    )
    second = tmp_path / "over.env"
    second.write_text("A=from-over\r\nS=secret\n", encoding="utf-8")
    c = container(
        {
            "env_file": ["conf/base.env", {"path": "over.env", "secret": True}],
            "env": {"E": "from-env"},
        },
        base_dir=tmp_path,
    )
    values = {k: v.value for k, v in c.env.items()}
    assert values == {
        "A": "from-over",
        "B": "quoted value",
        "C": "dq",
        "D": "x # not a comment",
        "E": "from-env",
        "F": "a=b",
        "S": "secret",
    }
    assert c.env["S"].secret and c.env["A"].secret and not c.env["B"].secret
    assert c.env["B"].location == SourceLocation(str(first), 4, 1)
    assert [f.path for f in c.env_files] == [first, second]
    assert c.env_files[0].sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    assert (c.env_files[0].secret, c.env_files[1].secret) == (False, True)
    assert c.env_files[1].location == SourceLocation("containers.c.env_file[1]", 1, 1)


def test_env_file_as_a_single_string(tmp_path: Path) -> None:
    (tmp_path / "a.env").write_text("X=1\n", encoding="utf-8")
    c = container({"env_file": "a.env"}, base_dir=tmp_path)
    assert c.env["X"].value == "1"
    assert c.env_files[0].location == SourceLocation("containers.c.env_file", 1, 1)


def test_env_file_problems_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "bad.env").write_text("OK=1\nno equals here\n=x\nA B=1\n", encoding="utf-8")
    (tmp_path / "bin.env").write_bytes(b"A=\xff\xfe\n")
    found = problems(
        {"containers": {"c": {"image": "x", "env_file": ["missing.env", "bad.env", "bin.env"]}}},
        base_dir=tmp_path,
    )
    by_line = sorted((p.location.file, p.location.line, p.path) for p in found)
    bad = str(tmp_path / "bad.env")
    assert by_line == sorted(
        [
            ("containers.c.env_file[0]", 1, "containers.c.env_file[0]"),
            (bad, 2, "containers.c.env_file[1]"),
            (bad, 3, "containers.c.env_file[1]"),
            (bad, 4, "containers.c.env_file[1]"),
            ("containers.c.env_file[2]", 1, "containers.c.env_file[2]"),
        ]
    )
    messages = " | ".join(p.message for p in found)
    assert "cannot read env file" in messages and "not UTF-8" in messages
    assert "expected KEY=VALUE, got 'no equals here'" in messages


def test_env_file_too_large_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "big.env").write_bytes(b"A=" + b"x" * (1024 * 1024) + b"\n")
    [(_, message)] = container_problems({"env_file": "big.env"}, base_dir=tmp_path)
    assert "larger than" in message


# --- ports ----------------------------------------------------------------------------------


def _ports(*entries: Any) -> list[tuple[str | None, int | None, int, str]]:
    c = container({"ports": list(entries)})
    return [(b.host_ip, b.host_port, b.container_port, b.protocol) for b in c.ports]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (80, [(None, None, 80, "tcp")]),
        ("80", [(None, None, 80, "tcp")]),
        ("8080:80", [(None, 8080, 80, "tcp")]),
        ("127.0.0.1:8080:80/udp", [("127.0.0.1", 8080, 80, "udp")]),
        ("127.0.0.1::80", [("127.0.0.1", None, 80, "tcp")]),
        ("[::1]:8080:80", [("::1", 8080, 80, "tcp")]),
        ("[::1]::80/sctp", [("::1", None, 80, "sctp")]),
        ("8080-8081:80-81", [(None, 8080, 80, "tcp"), (None, 8081, 81, "tcp")]),
        ("80-81", [(None, None, 80, "tcp"), (None, None, 81, "tcp")]),
        ("0.0.0.0:53:53/udp", [("0.0.0.0", 53, 53, "udp")]),
        ({"target": 80}, [(None, None, 80, "tcp")]),
        (
            {"target": 80, "published": 8080, "host_ip": "127.0.0.1", "protocol": "udp"},
            [("127.0.0.1", 8080, 80, "udp")],
        ),
        (
            {"target": "80-81", "published": "9080-9081"},
            [(None, 9080, 80, "tcp"), (None, 9081, 81, "tcp")],
        ),
    ],
)
def test_port_forms(entry: Any, expected: list[tuple[str | None, int | None, int, str]]) -> None:
    assert _ports(entry) == expected


def test_port_bindings_are_located_at_their_entry() -> None:
    c = container({"ports": [80, "90-91"]})
    assert [b.location.file for b in c.ports] == [
        "containers.c.ports[0]",
        "containers.c.ports[1]",
        "containers.c.ports[1]",
    ]
    assert c.ports[0] == PortBinding(container_port=80)


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ("8080-8082:80-81", "has 3 ports but container range '80-81' has 2"),
        ("70000:80", "host port 70000 is out of range"),
        ("0:80", "host port 0 is out of range"),
        ("81-80", "ends before it starts"),
        ("1.2.3:80:80", "is not an IP address"),
        ("::1:80:80", "IPv6 host addresses in brackets"),
        ("[::1]80", "expected [HOST_IP:]"),
        ("80/http", "protocol 'http'"),
        ({"target": 80, "host_ip": "localhost"}, "is not an IP address"),
        ({"target": 80, "published": "x"}, "is not a port number"),
    ],
)
def test_port_problems(entry: Any, fragment: str) -> None:
    [(path, message)] = container_problems({"ports": [80, entry]})
    assert path == "containers.c.ports[1]"
    assert fragment in message


# --- mounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("data:/var/lib/data", Mount(type="volume", source="data", target="/var/lib/data")),
        ("data:/d:ro", Mount(type="volume", source="data", target="/d", read_only=True)),
        ("data:/d:rw", Mount(type="volume", source="data", target="/d")),
        ("/anon", Mount(type="volume", target="/anon")),
        ("/host/dir:/d", Mount(type="bind", source="/host/dir", target="/d")),
        ("./src:/src:ro", Mount(type="bind", source="/srv/app/src", target="/src", read_only=True)),
        ("../shared:/s", Mount(type="bind", source="/srv/shared", target="/s")),
        (".:/app", Mount(type="bind", source="/srv/app", target="/app")),
        ({"type": "volume", "target": "/anon"}, Mount(type="volume", target="/anon")),
        (
            {"type": "volume", "source": "v", "target": "/v", "read_only": True},
            Mount(type="volume", source="v", target="/v", read_only=True),
        ),
        (
            {"type": "bind", "source": "conf", "target": "/etc/app"},
            Mount(type="bind", source="/srv/app/conf", target="/etc/app"),
        ),
        ({"type": "tmpfs", "target": "/tmp"}, Mount(type="tmpfs", target="/tmp")),
        (
            {"type": "tmpfs", "target": "/run", "tmpfs": {"size": "64m", "mode": "1777"}},
            Mount(type="tmpfs", target="/run", tmpfs_size=64 * 1024**2, tmpfs_mode=0o1777),
        ),
    ],
)
def test_mount_forms(entry: Any, expected: Mount) -> None:
    key = "mounts" if isinstance(entry, dict) and entry.get("type") == "tmpfs" else "volumes"
    assert container({key: [entry]}).mounts == (expected,)


def test_home_directory_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/someone")
    [mount] = container({"volumes": ["~/.cache:/cache"]}).mounts
    assert mount.source == "/home/someone/.cache"


def test_volumes_come_before_mounts_and_are_located() -> None:
    c = container({"volumes": ["a:/a"], "mounts": [{"type": "tmpfs", "target": "/t"}]})
    assert [m.target for m in c.mounts] == ["/a", "/t"]
    assert [m.location.file for m in c.mounts] == [
        "containers.c.volumes[0]",
        "containers.c.mounts[0]",
    ]


@pytest.mark.parametrize(
    ("key", "entry", "path", "fragment"),
    [
        ("volumes", "data:relative", "containers.c.volumes[0]", "must be an absolute path"),
        ("volumes", "data:/d:z", "containers.c.volumes[0]", "mount option 'z' is not supported"),
        ("volumes", "a:b:c:d", "containers.c.volumes[0]", "expected [SOURCE:]TARGET"),
        ("volumes", "data/x:/d", "containers.c.volumes[0]", "must start with /, ./, ../ or ~"),
        ("mounts", {"type": "bind", "target": "/x"}, "containers.c.mounts[0]", "needs a source"),
        (
            "mounts",
            {"type": "tmpfs", "source": "s", "target": "/x"},
            "containers.c.mounts[0].source",
            "has no source",
        ),
        (
            "mounts",
            {"type": "volume", "target": "/x", "tmpfs": {"size": "1m"}},
            "containers.c.mounts[0].tmpfs",
            "type tmpfs only",
        ),
        (
            "mounts",
            {"type": "volume", "source": "a b", "target": "/x"},
            "containers.c.mounts[0].source",
            "not a valid volume name",
        ),
        (
            "mounts",
            {"type": "tmpfs", "target": "/x", "tmpfs": {"mode": "999"}},
            "containers.c.mounts[0].tmpfs.mode",
            "not octal",
        ),
        (
            "mounts",
            {"type": "tmpfs", "target": "/x", "tmpfs": {"size": "lots"}},
            "containers.c.mounts[0].tmpfs.size",
            "expected a size",
        ),
        ("mounts", {"type": "tmpfs", "target": "x"}, "containers.c.mounts[0].target", "absolute"),
    ],
)
def test_mount_problems(key: str, entry: Any, path: str, fragment: str) -> None:
    [(found_path, message)] = container_problems({key: [entry]})
    assert found_path == path
    assert fragment in message


def test_two_mounts_on_one_target_is_a_problem() -> None:
    assert container_problems(
        {"volumes": ["a:/d"], "mounts": [{"type": "tmpfs", "target": "/d"}]}
    ) == [("containers.c.mounts[0]", "two mounts on the same target '/d'")]


# --- networks, depends_on -------------------------------------------------------------------


def test_network_list_and_map_forms() -> None:
    listed = container({"networks": ["front", "back"]})
    assert listed.networks == (
        NetworkAttachment(network="front"),
        NetworkAttachment(network="back"),
    )
    assert listed.networks[1].location == SourceLocation("containers.c.networks[1]", 1, 1)
    mapped = container(
        {
            "networks": {
                "front": None,
                "back": {"aliases": ["db", "pg"], "ipv4_address": "10.0.0.10"},
            }
        }
    )
    assert mapped.networks == (
        NetworkAttachment(network="front"),
        NetworkAttachment(network="back", aliases=("db", "pg"), ipv4_address="10.0.0.10"),
    )
    assert mapped.networks[1].location == SourceLocation("containers.c.networks.back", 1, 1)


def test_container_network_problems() -> None:
    assert container_problems({"networks": ["a", "a"]}) == [
        ("containers.c.networks[1]", "network 'a' is listed twice")
    ]
    assert container_problems({"networks": {"a": {"ipv4_address": "300.1.1.1"}}}) == [
        ("containers.c.networks.a.ipv4_address", "'300.1.1.1' is not an IPv4 address")
    ]


def test_depends_on_forms() -> None:
    listed = container({"depends_on": ["db", "cache"]})
    assert listed.depends_on == (Dependency(container="db"), Dependency(container="cache"))
    assert listed.depends_on[0].location == SourceLocation("containers.c.depends_on[0]", 1, 1)
    mapped = container(
        {
            "depends_on": {
                "db": {"condition": "healthy"},
                "migrate": {"condition": "completed"},
                "x": None,
                "y": {},
            }
        }
    )
    assert [(d.container, d.condition) for d in mapped.depends_on] == [
        ("db", "healthy"),
        ("migrate", "completed"),
        ("x", "started"),
        ("y", "started"),
    ]
    assert mapped.depends_on[1].location == SourceLocation("containers.c.depends_on.migrate", 1, 1)


def test_duplicate_dependency_is_a_problem() -> None:
    assert container_problems({"depends_on": ["db", "db"]}) == [
        ("containers.c.depends_on[1]", "dependency on 'db' is listed twice")
    ]


# --- healthcheck, restart, resources, signals -----------------------------------------------


@pytest.mark.parametrize(
    ("test", "expected"),
    [
        ("curl -f http://localhost/", ("CMD-SHELL", "curl -f http://localhost/")),
        (["curl", "-f", "http://localhost/"], ("CMD", "curl", "-f", "http://localhost/")),
        (["CMD", "true"], ("CMD", "true")),
        (["CMD-SHELL", "exit 0"], ("CMD-SHELL", "exit 0")),
        (["NONE"], ("NONE",)),
        (["pg_isready", "-p", 5432], ("CMD", "pg_isready", "-p", "5432")),
    ],
)
def test_healthcheck_test_forms(test: Any, expected: tuple[str, ...]) -> None:
    healthcheck = container({"healthcheck": {"test": test}}).healthcheck
    assert healthcheck is not None
    assert healthcheck.test == expected
    assert healthcheck.disabled == (expected == ("NONE",))


def test_healthcheck_defaults_and_timings() -> None:
    default = container({"healthcheck": {"test": "true"}}).healthcheck
    assert default == Healthcheck(test=("CMD-SHELL", "true"))
    assert (default.interval, default.timeout, default.retries, default.start_period) == (
        timedelta(seconds=30),
        timedelta(seconds=30),
        3,
        timedelta(0),
    )
    timed = container(
        {"healthcheck": {"interval": "5s", "timeout": 2, "retries": 10, "start_period": "1m30s"}}
    ).healthcheck
    assert timed == Healthcheck(
        test=(),  # keeps the image's own test
        interval=timedelta(seconds=5),
        timeout=timedelta(seconds=2),
        retries=10,
        start_period=timedelta(seconds=90),
    )


def test_healthcheck_disable() -> None:
    healthcheck = container({"healthcheck": {"disable": True}}).healthcheck
    assert healthcheck is not None and healthcheck.disabled and healthcheck.test == ("NONE",)


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        (
            {"disable": True, "test": "true"},
            "containers.c.healthcheck.disable",
            "cannot also have a test",
        ),
        ({"test": ["NONE", "x"]}, "containers.c.healthcheck.test", "takes no arguments"),
        ({"test": ["CMD"]}, "containers.c.healthcheck.test", "needs a command"),
        ({"interval": "soon"}, "containers.c.healthcheck.interval", "expected a duration"),
    ],
)
def test_healthcheck_problems(raw: dict[str, Any], path: str, fragment: str) -> None:
    [(found_path, message)] = container_problems({"healthcheck": raw})
    assert found_path == path
    assert fragment in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, RestartPolicy()),
        ("no", RestartPolicy()),
        ("always", RestartPolicy(name="always")),
        ("unless-stopped", RestartPolicy(name="unless-stopped")),
        ("on-failure", RestartPolicy(name="on-failure")),
        ("on-failure:5", RestartPolicy(name="on-failure", max_retries=5)),
    ],
)
def test_restart_forms(value: Any, expected: RestartPolicy) -> None:
    assert container({"restart": value}).restart == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("sometimes", "unknown restart policy"), ("always:3", "only on-failure takes a retry count")],
)
def test_restart_problems(value: str, fragment: str) -> None:
    [(path, message)] = container_problems({"restart": value})
    assert path == "containers.c.restart"
    assert fragment in message


def test_one_shot_job_cannot_restart_always() -> None:
    [(path, message)] = container_problems({"run": "once", "restart": "always"})
    assert path == "containers.c.restart"
    assert "never finish" in message and "on-failure" in message
    assert container({"run": "once", "restart": "on-failure:3"}).run == "once"


def test_resources() -> None:
    assert container({"resources": {"cpus": "0.5", "memory": "256m", "pids": 100}}).resources == (
        Resources(cpus=0.5, memory=256 * 1024**2, pids=100)
    )
    assert container({"resources": {"cpus": 2}}).resources == Resources(cpus=2.0)
    assert container({"resources": {"memory": 1024}}).resources == Resources(memory=1024)


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ({"cpus": "0"}, "containers.c.resources.cpus", "not a positive number"),
        ({"memory": "lots"}, "containers.c.resources.memory", "expected a size"),
    ],
)
def test_resource_problems(raw: dict[str, Any], path: str, fragment: str) -> None:
    [(found_path, message)] = container_problems({"resources": raw})
    assert found_path == path
    assert fragment in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SIGTERM", "SIGTERM"),
        ("int", "SIGINT"),
        ("sigkill", "SIGKILL"),
        (9, "9"),
        ("SIGRTMIN+3", "SIGRTMIN+3"),
    ],
)
def test_stop_signal(value: Any, expected: str) -> None:
    assert container({"stop_signal": value}).stop_signal == expected


def test_unknown_stop_signal_is_a_problem() -> None:
    assert container_problems({"stop_signal": "SIGNOPE"}) == [
        ("containers.c.stop_signal", "unknown signal 'SIGNOPE'")
    ]


def test_stop_grace_period_and_capabilities() -> None:
    c = container(
        {"stop_grace_period": "1m", "cap_add": ["cap_net_admin", "SYS_TIME"], "cap_drop": ["ALL"]}
    )
    assert c.stop_grace_period == timedelta(minutes=1)
    assert (c.cap_add, c.cap_drop) == (("NET_ADMIN", "SYS_TIME"), ("ALL",))


def test_labels_list_item_without_equals_is_a_problem() -> None:
    assert container_problems({"labels": ["a=1", "b"]}) == [
        (
            "containers.c.labels[1]",
            "expected labels as key=value, got 'b'; write 'b=' for an empty value",
        )
    ]


# --- collecting problems --------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_location() -> None:
    found = problems(
        {
            "images": {"a": {}},
            "networks": {"n": {"subnet": "10.0.0.1/8"}},
            "containers": {
                "web": {"image": "x", "ports": ["99999"], "restart": "always:1"},
                "job": {"image": "x", "volumes": ["v:rel"], "stop_signal": "NOPE"},
            },
        }
    )
    paths = sorted(p.path for p in found)
    assert paths == [
        "containers.job.stop_signal",
        "containers.job.volumes[0]",
        "containers.web.ports[0]",
        "containers.web.restart",
        "images.a",
        "networks.n.subnet",
    ]
    assert all(p.location.file == p.path for p in found)


def test_locator_failures_fall_back_to_the_parent() -> None:
    def picky(path: FieldPath) -> SourceLocation:
        if len(path) > 2:
            raise KeyError(path)
        return SourceLocation("t.yaml", len(path), 1)

    stack = normalize(
        {"stack": "t", "containers": {"c": {"image": "x", "ports": [80]}}}, picky, base_dir=BASE
    )
    assert stack.containers["c"].ports[0].location == SourceLocation("t.yaml", 2, 1)


def test_equal_meaning_compares_equal_whatever_the_spelling() -> None:
    short = container({"ports": ["8080:80"], "depends_on": ["db"], "restart": False})
    long = container(
        {
            "ports": [{"target": 80, "published": 8080}],
            "depends_on": {"db": {"condition": "started"}},
            "restart": "no",
        }
    )
    assert short == long
    assert hash(short) == hash(long)


def test_env_value_equality_ignores_location() -> None:
    assert EnvValue(value="a", location=SourceLocation("x", 1, 1)) == EnvValue(value="a")


def test_naming_default_explicitly_also_synthesises_it() -> None:
    stack = load(
        {
            "networks": {"back": None},
            "containers": {"a": {"image": "x", "networks": ["back", "default"]}},
        }
    )
    assert list(stack.networks) == ["back", "default"]
    assert stack.networks["default"].implicit


def test_problems_point_at_values_when_a_value_locator_is_given() -> None:
    def at_value(path: FieldPath) -> SourceLocation:
        return SourceLocation("value:" + format_path(path), 2, 2)

    with pytest.raises(StackError) as info:
        normalize(
            {
                "stack": "t",
                "containers": {"c": {"image": "x", "stop_signal": "NOPE", "ports": [80]}},
            },
            locate,
            base_dir=BASE,
            locate_value=at_value,
        )
    [problem] = info.value.problems
    assert problem.location == SourceLocation("value:containers.c.stop_signal", 2, 2)


def test_env_file_must_be_a_regular_file(tmp_path: Path) -> None:
    import os

    os.mkfifo(tmp_path / "fifo.env")
    (tmp_path / "dir.env").mkdir()
    found = container_problems(
        {"env_file": ["fifo.env", "dir.env", "nul\x00.env"]}, base_dir=tmp_path
    )
    assert [path for path, _ in found] == [
        "containers.c.env_file[0]",
        "containers.c.env_file[1]",
        "containers.c.env_file[2]",
    ]
    assert all("not a regular file" in m or "cannot read" in m for _, m in found)


# --- placement (cluster engines) --------------------------------------------------------------


def test_placement_is_absent_by_default() -> None:
    assert container({}).placement is None


def test_placement_constraints_lose_their_spaces_and_keep_their_order() -> None:
    placed = container(
        {
            "placement": {
                "constraints": ["node.role != manager", "node.labels.zone==a"],
                "spread": ["node.labels.zone"],
                "max_replicas_per_node": 2,
            }
        }
    ).placement
    assert placed == Placement(
        constraints=("node.role!=manager", "node.labels.zone==a"),
        spread=("node.labels.zone",),
        max_replicas_per_node=2,
    )


def test_placement_is_not_part_of_a_containers_configuration() -> None:
    # Adding placement must never replace containers on a single engine.
    from declarun.plan.configs import container_config

    plain = container({})
    placed = container({"placement": {"constraints": ["node.role==worker"]}})
    assert container_config(plain, "busybox") == container_config(placed, "busybox")


def test_init_extra_hosts_and_dns() -> None:
    c = container(
        {
            "init": True,
            "extra_hosts": ["db.local:10.0.0.5", "v6.local:::0001"],
            "dns": "1.1.1.1",
        }
    )
    assert c.init is True
    assert c.extra_hosts == ("db.local:10.0.0.5", "v6.local:::1")
    assert c.dns == ("1.1.1.1",)
    mapped = container({"extra_hosts": {"a": "10.0.0.1"}, "dns": ["8.8.8.8", "::1"]})
    assert (mapped.init, mapped.extra_hosts, mapped.dns) == (
        None,
        ("a:10.0.0.1",),
        ("8.8.8.8", "::1"),
    )


def test_extra_hosts_and_dns_need_ip_addresses() -> None:
    assert container_problems({"extra_hosts": ["db:nowhere"], "dns": ["one.one"]}) == [
        ("containers.c.dns[0]", "'one.one' is not an IP address"),
        ("containers.c.extra_hosts[0]", "'nowhere' is not an IP address (for host 'db')"),
    ]


def test_external_and_engine_named_volumes_and_networks() -> None:
    stack = load(
        {
            "volumes": {"data": {"external": True}, "cache": {"engine_name": "my-cache"}},
            "networks": {"proxy": {"external": True, "engine_name": "traefik"}},
        }
    )
    data, cache, proxy = stack.volumes["data"], stack.volumes["cache"], stack.networks["proxy"]
    assert (data.external, data.engine_name) == (True, None)
    assert (cache.external, cache.engine_name) == (False, "my-cache")
    assert (proxy.external, proxy.engine_name) == (True, "traefik")


def test_an_external_resource_says_nothing_of_how_to_make_it() -> None:
    found = problems(
        {
            "volumes": {"data": {"external": True, "driver": "local", "keep": True}},
            "networks": {"proxy": {"external": True, "subnet": "10.9.0.0/24"}},
        }
    )
    assert [(p.path, p.message) for p in found] == [
        (
            "networks.proxy.subnet",
            "an external network is used as it is: declarun does not set its subnet",
        ),
        (
            "volumes.data.driver",
            "an external volume is used as it is: declarun does not set its driver",
        ),
        (
            "volumes.data.keep",
            "an external volume is used as it is: declarun does not set its keep",
        ),
    ]
