"""Multi-stage graphs, heredocs, RUN mounts (cache, secret, bind, tmpfs) and ADD, on declarund."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from pathlib import Path

import pytest

from tests.daemon.builder.conftest import BuildDaemon
from tests.daemon.builder.support import (
    docker,
    docker_build,
    post_build,
    saved_image,
    stream_text,
    tar_of,
    write_context,
)

pytestmark = pytest.mark.root


def test_independent_stages_run_concurrently_and_unneeded_ones_are_skipped(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    base = build_daemon.base
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {base} AS left
RUN cut -d' ' -f1 /proc/uptime > /start; sleep 2; cut -d' ' -f1 /proc/uptime > /end
FROM {base} AS right
RUN cut -d' ' -f1 /proc/uptime > /start; sleep 2; cut -d' ' -f1 /proc/uptime > /end
FROM {base} AS unused
RUN echo this stage must not run; exit 1
FROM {base} AS final
COPY --from=left /start /left-start
COPY --from=left /end /left-end
COPY --from=right /start /right-start
COPY --from=right /end /right-end
""",
    )
    done = docker_build(build_daemon.host, context, "--target", "final", "-t", "stages:1")
    assert "this stage must not run" not in done.stdout
    assert "AS unused" not in done.stdout  # not even its FROM is a step
    assert "Step 1/9 : FROM" in done.stdout
    times = docker(
        build_daemon.host,
        "run",
        "--rm",
        "stages:1",
        "cat",
        "/left-start",
        "/left-end",
        "/right-start",
        "/right-end",
    ).stdout.split()
    left_start, left_end, right_start, right_end = (float(t) for t in times)
    assert left_start < right_end and right_start < left_end, times


def test_heredocs_run_and_copy(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""# syntax=docker/dockerfile:1
FROM {build_daemon.base}
ARG NAME=heredoc
RUN <<EOF
echo first > /one
echo second >> /one
EOF
RUN <<EOF
#!/bin/sh
echo "from a script" > /two
EOF
COPY <<EOF /three
hello $NAME
EOF
COPY <<'EOF' /four
literal $NAME
EOF
""",
    )
    docker_build(build_daemon.host, context, "-t", "heredoc:1")
    out = docker(
        build_daemon.host, "run", "--rm", "heredoc:1", "cat", "/one", "/two", "/three", "/four"
    ).stdout
    assert out == "first\nsecond\nfrom a script\nhello heredoc\nliteral $NAME\n"
    files = saved_image(build_daemon.host, "heredoc:1").layers
    assert not any(path.startswith("/dev/pipes") for layer in files for path in layer)


def test_a_cache_mount_persists_between_builds_and_stays_out_of_the_layers(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
ARG ROUND
RUN --mount=type=cache,target=/cache,id=test-cache echo $ROUND >> /cache/log && \
    cp /cache/log /seen
""",
    )
    docker_build(build_daemon.host, context, "--build-arg", "ROUND=1", "-t", "cache:1")
    docker_build(build_daemon.host, context, "--build-arg", "ROUND=2", "-t", "cache:2")
    seen = docker(build_daemon.host, "run", "--rm", "cache:2", "cat", "/seen").stdout
    assert seen.split()[-2:] == ["1", "2"]
    for layer in saved_image(build_daemon.host, "cache:2").layers:
        assert "/cache/log" not in layer
        assert "/cache" not in layer
    verbose = docker(build_daemon.host, "system", "df", "-v").stdout
    assert "exec.cachemount" in verbose, verbose


def test_secrets_reach_the_run_and_nothing_else(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    secret = "s3cret-value-7f2a"
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
RUN --mount=type=secret,id=token test "$(cat /run/secrets/token)" = {secret[:6]}$(printf %s -value-7f2a) && echo ok-file > /file-check
RUN --mount=type=secret,id=token,env=TOKEN,target=/tmp/tok test "$TOKEN" = "$(cat /tmp/tok)" && echo ok-env > /env-check
RUN --mount=type=secret,id=absent echo absent-is-fine > /absent-check
""",
    )
    header = base64.b64encode(json.dumps({"token": secret}).encode()).decode()
    status, lines, _ = post_build(
        build_daemon.daemon.socket_path,
        tar_of(context),
        {"t": "secret:1"},
        {"X-Declarun-Build-Secrets": header},
    )
    text = stream_text(lines)
    assert status == 200 and "Successfully tagged secret:1" in text, lines
    assert secret not in json.dumps(lines)
    saved = saved_image(build_daemon.host, "secret:1")
    assert all(secret.encode() not in blob for blob in saved.layer_bytes)
    assert secret not in json.dumps(saved.config)
    for layer in saved.layers:
        assert not any(p.startswith(("/run/secrets", "/tmp/tok", "/run/declarun")) for p in layer)
    checks = docker(
        build_daemon.host, "run", "--rm", "secret:1", "cat", "/file-check", "/env-check"
    ).stdout
    assert checks == "ok-file\nok-env\n"

    required = write_context(
        tmp_path / "required",
        f"FROM {build_daemon.base}\nRUN --mount=type=secret,id=nope,required=true true\n",
    )
    status, lines, _ = post_build(build_daemon.daemon.socket_path, tar_of(required))
    assert lines[-1]["error"] == "secret nope: not found"


def test_bind_and_tmpfs_mounts(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base} AS tools
RUN echo from-stage > /tool
FROM {build_daemon.base}
RUN --mount=type=bind,source=src,target=/src cat /src/a.txt > /from-context
RUN --mount=type=bind,from=tools,source=/tool,target=/mnt/tool cat /mnt/tool > /from-stage
RUN --mount=type=bind,source=src,target=/src,rw echo changed > /src/a.txt && cat /src/a.txt > /rw
RUN --mount=type=tmpfs,target=/scratch echo temp > /scratch/t && cat /scratch/t > /tmpfs
""",
        {"src/a.txt": "context-file\n"},
    )
    docker_build(build_daemon.host, context, "-t", "mounts:1")
    out = docker(
        build_daemon.host,
        "run",
        "--rm",
        "mounts:1",
        "cat",
        "/from-context",
        "/from-stage",
        "/rw",
        "/tmpfs",
    ).stdout
    assert out == "context-file\nfrom-stage\nchanged\ntemp\n"
    assert (context / "src" / "a.txt").read_text() == "context-file\n"
    for layer in saved_image(build_daemon.host, "mounts:1").layers:
        assert not any(p.startswith(("/src", "/scratch", "/mnt")) for p in layer), layer.keys()

    read_only = write_context(
        tmp_path / "ro",
        f"FROM {build_daemon.base}\nRUN --mount=type=bind,source=.,target=/src touch /src/x\n",
    )
    failed = docker_build(build_daemon.host, read_only, check=False)
    assert failed.returncode == 1
    assert "Read-only file system" in failed.stdout + failed.stderr
    docker(build_daemon.host, "container", "prune", "-f")  # the failed step's container


def test_add_extracts_local_archives_and_copy_follows_image_symlinks(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    import io
    import tarfile

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("inside/file.txt")
        data = b"from the archive\n"
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
RUN mkdir -p /real && ln -s /real /link
ADD bundle.tar.gz /unpacked/
COPY note.txt /link/
COPY --chown=1000:1000 --chmod=640 note.txt /owned.txt
""",
        {"bundle.tar.gz": archive.getvalue(), "note.txt": "note\n"},
    )
    docker_build(build_daemon.host, context, "-t", "add:1")
    out = docker(
        build_daemon.host,
        "run",
        "--rm",
        "add:1",
        "sh",
        "-c",
        "cat /unpacked/inside/file.txt /real/note.txt; readlink /link; stat -c '%u:%g %a' /owned.txt",
    ).stdout
    assert out == "from the archive\nnote\n/real\n1000:1000 640\n"


def test_hostile_contexts_are_refused_and_contained(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    import io
    import tarfile

    def tar(name: str, *, link: str | None = None, hard: bool = False) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as archive:
            df = b"FROM scratch\n"
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(df)
            archive.addfile(info, io.BytesIO(df))
            entry = tarfile.TarInfo(name)
            if link is not None:
                entry.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
                entry.linkname = link
                archive.addfile(entry)
            else:
                entry.size = 1
                archive.addfile(entry, io.BytesIO(b"x"))
        return out.getvalue()

    socket_path = build_daemon.daemon.socket_path
    for body, message in (
        (tar("../../escape"), "has '..' in its name"),
        (tar("/tmp/escape-abs"), "has an absolute name"),
        (tar("h", link="/etc/passwd", hard=True), "absolute hard link target"),
        (tar("h", link="../../etc/passwd", hard=True), "'..' in its hard link target"),
    ):
        status, _, raw = post_build(socket_path, body)
        assert status == 400, raw
        assert message in json.loads(raw)["message"]
    assert not Path("/tmp/escape-abs").exists()

    base = build_daemon.base
    context = write_context(tmp_path / "ctx", "", {"inside.txt": "in\n"})
    (context / "out").symlink_to("/etc")
    for dockerfile, expected in (
        (f"FROM {base}\nCOPY ../x /x\n", "forbidden path outside the build context"),
        (f"FROM {base}\nCOPY out/passwd /stolen\n", "file not found in build context"),
        (f"FROM {base}\nCOPY out /stolen\n", "file not found in build context"),
        (f"FROM {base}\nCOPY /etc/hostname /stolen\n", "file not found in build context"),
    ):
        (context / "Dockerfile").write_text(dockerfile)
        failed = docker_build(build_daemon.host, context, check=False)
        assert failed.returncode != 0
        assert expected in failed.stderr, failed.stderr
    # A link inside a copied directory is data: it is copied as a link, never followed.
    (context / "Dockerfile").write_text(f"FROM {base}\nCOPY . /ctx/\n")
    docker_build(build_daemon.host, context, "-t", "links:1")
    link = docker(build_daemon.host, "run", "--rm", "links:1", "sh", "-c", "readlink /ctx/out")
    assert link.stdout == "/etc\n"
    assert re.search(r"\S", docker(build_daemon.host, "ps", "-aq").stdout) is None


def _tree_of(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry under ``root``: type, mode, owner, times, content or link, overlay xattrs."""
    import os
    import stat

    out: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                content: object = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                content = Path(path).read_bytes()
            elif stat.S_ISCHR(st.st_mode):
                content = st.st_rdev
            else:
                content = ""
            opaque = b""
            with contextlib.suppress(OSError):
                opaque = os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False)
            # Directory times change as entries come and go; a whiteout's time means nothing.
            timeless = stat.S_ISDIR(st.st_mode) or stat.S_ISCHR(st.st_mode)
            mtime = 0 if timeless else st.st_mtime_ns
            out[os.path.relpath(path, root)] = (
                stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                mtime, content, opaque,
            )  # fmt: skip
    return out


@pytest.mark.parametrize("epoch", [None, "1700000000"])
def test_snapshots_made_from_written_files_equal_their_layers(
    build_daemon: BuildDaemon, tmp_path: Path, epoch: str | None
) -> None:
    from declarun.daemon.images.unpack import apply_layer
    from declarun.daemon.snapshots import chain_ids

    secret = base64.b64encode(json.dumps({"s": "hush"}).encode()).decode()
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
ARG SOURCE_DATE_EPOCH
RUN rm /etc/group && mkdir -p /data/sub && echo x > /data/sub/f && ln -s /data /d
RUN --mount=type=secret,id=s rm -rf /data && mkdir /data && echo y > /data/new
COPY files/ /d/
WORKDIR /deep/work/dir
""",
        {"files/a.txt": "a\n", "files/sub/b.txt": "b\n"},
    )
    query = {"t": "adopted:1", "nocache": "1"}
    if epoch is not None:
        query["buildargs"] = json.dumps({"SOURCE_DATE_EPOCH": epoch})
    status, lines, _ = post_build(
        build_daemon.daemon.socket_path,
        tar_of(context),
        query,
        {"X-Declarun-Build-Secrets": secret},
    )
    assert status == 200 and "Successfully tagged adopted:1" in stream_text(lines), lines
    saved = saved_image(build_daemon.host, "adopted:1")
    diff_ids = saved.config["rootfs"]["diff_ids"]
    chains = chain_ids(diff_ids)
    snapshots = build_daemon.daemon.data_root / "snapshots"
    for position, blob in enumerate(saved.layer_bytes[1:], start=1):
        unpacked = tmp_path / f"layer-{position}"
        import io

        apply_layer(io.BytesIO(blob), unpacked, mode="overlay")
        stored = snapshots / chains[position].removeprefix("sha256:") / "fs"
        assert _tree_of(stored) == _tree_of(unpacked), position


def test_run_options_reach_the_step_containers(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
RUN cat /etc/hosts > /hosts; ls /sys/class/net > /nets; \\
    df -k /dev/shm | tail -1 > /shm; \
    cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/memory/memory.limit_in_bytes > /mem 2>/dev/null; \
    true
""",
    )
    docker_build(
        build_daemon.host,
        context,
        "--network",
        "none",
        "--add-host",
        "extra.example:10.1.2.3",
        "--shm-size",
        "33554432",
        "--memory",
        "128m",
        "-t",
        "opts:1",
    )
    out = docker(
        build_daemon.host,
        "run",
        "--rm",
        "opts:1",
        "sh",
        "-c",
        "cat /hosts; echo; cat /nets /shm /mem",
    ).stdout
    assert re.search(r"10\.1\.2\.3\s+extra\.example", out), out
    assert out.split("\n\n", 1)[1].split()[0] == "lo", out
    assert " 32768 " in out, out
    assert "134217728" in out, out
