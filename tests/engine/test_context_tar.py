"""The build context tar: the entries the docker CLI sends, with its header choices."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from declarun.engine.context_tar import write_context_tar
from declarun.errdefs import InvalidArgument


def _context(root: Path) -> Path:
    context = root / "ctx"
    (context / "src" / "sub").mkdir(parents=True)
    (context / "empty").mkdir()
    (context / "tmp").mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (context / ".dockerignore").write_text("*.log\ntmp/\n!tmp/keep\nDockerfile\n")
    (context / "src" / "app.py").write_text("print(1)\n")
    (context / "src" / "run.sh").write_text("#!/bin/sh\n")
    (context / "src" / "run.sh").chmod(0o755)
    (context / "debug.log").write_text("ignored\n")
    (context / "tmp" / "scratch").write_text("ignored\n")
    (context / "tmp" / "keep").write_text("kept by the exception\n")
    os.symlink("src/app.py", context / "link")
    os.link(context / "src" / "app.py", context / "src" / "sub" / "same.py")
    return context


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_ignored_files_stay_out_and_headers_are_the_clis(tmp_path: Path) -> None:
    context = _context(tmp_path)
    out = io.BytesIO()
    assert write_context_tar(context, "Dockerfile", out) == "Dockerfile"
    members = _members(out.getvalue())
    assert sorted(members) == [
        ".dockerignore",
        "Dockerfile",  # always sent, even when .dockerignore excludes it
        "empty",
        "link",
        "src",
        "src/app.py",
        "src/run.sh",
        "src/sub",
        "src/sub/same.py",
        "tmp/keep",  # re-included by "!tmp/keep"; tmp itself is not sent
    ]
    assert all((m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "") for m in members.values())
    assert members["src/run.sh"].mode == 0o755
    assert members["link"].issym() and members["link"].linkname == "src/app.py"
    # a second path to one inode is a hard link to the first one sent
    assert members["src/sub/same.py"].islnk()
    assert members["src/sub/same.py"].linkname == "src/app.py"
    assert members["empty"].isdir()


def test_a_dockerfile_outside_the_context_is_sent_under_a_name_the_builder_ignores(
    tmp_path: Path,
) -> None:
    context = _context(tmp_path)
    (tmp_path / "app.Dockerfile").write_text("FROM scratch\n")
    out = io.BytesIO()
    name = write_context_tar(context, "../app.Dockerfile", out)
    assert name.startswith(".dockerfile.") and len(name) == len(".dockerfile.") + 20
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        dockerfile = tar.extractfile(name)
        ignore = tar.extractfile(".dockerignore")
        assert dockerfile is not None and ignore is not None
        assert dockerfile.read() == b"FROM scratch\n"
        assert ignore.read().decode().splitlines()[-1] == name
    # the same Dockerfile gets the same name: the engine's cache sees the same context
    again = io.BytesIO()
    assert write_context_tar(context, "../app.Dockerfile", again) == name


def test_an_unreadable_dockerfile_is_an_invalid_argument(tmp_path: Path) -> None:
    context = _context(tmp_path)
    with pytest.raises(InvalidArgument, match="cannot read"):
        write_context_tar(context, "../missing.Dockerfile", io.BytesIO())
