"""``observe.swarm``: the host files that become Swarm configs, and the routing-mesh switch."""

from __future__ import annotations

from pathlib import Path

from declarun.observe.swarm import MAX_FILE_BYTES, MAX_FILES, host_files, routing_mesh
from tests.plan.helpers import load


def test_env_files_and_read_only_binds_are_read_by_path(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "a.conf").write_text("a\n")
    (tmp_path / "conf" / "sub").mkdir()
    (tmp_path / "conf" / "sub" / "b.conf").write_text("b\n")
    (tmp_path / "one.txt").write_text("1\n")
    (tmp_path / "big.bin").write_bytes(b"x" * (MAX_FILE_BYTES + 1))
    (tmp_path / "app.env").write_text("K=v\n")
    stack = load(
        tmp_path,
        """
        stack: f
        containers:
          app:
            image: busybox
            env_file: app.env
            volumes:
              - ./conf:/etc/conf:ro
              - ./one.txt:/one.txt:ro
              - ./big.bin:/big.bin:ro
              - ./gone:/gone:ro
              - ./writable:/w
        """,
    )
    files = host_files(stack)
    base = str(tmp_path)
    assert [(f.relative, f.data) for f in files[f"{base}/conf"]] == [
        ("a.conf", b"a\n"),
        ("sub/b.conf", b"b\n"),
    ]
    assert files[f"{base}/one.txt"][0].data == b"1\n"
    assert files[f"{base}/app.env"][0].data == b"K=v\n"
    (big,) = files[f"{base}/big.bin"]
    assert big.data is None and "a Swarm config holds at most" in (big.problem or "")
    (gone,) = files[f"{base}/gone"]
    assert gone.data is None and "does not exist" in (gone.problem or "")
    assert f"{base}/writable" not in files  # a writable bind stays a bind


def test_a_directory_of_too_many_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "many").mkdir()
    for index in range(MAX_FILES + 1):
        (tmp_path / "many" / f"{index}.txt").write_text("x")
    stack = load(
        tmp_path,
        """
        stack: f
        containers:
          app: {image: busybox, volumes: ["./many:/many:ro"]}
        """,
    )
    (entry,) = host_files(stack)[f"{tmp_path}/many"]
    assert entry.data is None and f"more than {MAX_FILES} files" in (entry.problem or "")


def test_the_routing_mesh_can_be_said_either_way() -> None:
    assert routing_mesh({"DECLARUN_SWARM_ROUTING_MESH": "1"}) is True
    assert routing_mesh({"DECLARUN_SWARM_ROUTING_MESH": "off"}) is False
    assert routing_mesh({}) == Path("/sys/module/ip_vs").exists()
