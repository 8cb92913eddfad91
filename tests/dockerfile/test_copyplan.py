"""COPY/ADD on a local directory: sources, destination rules, owners, archives, digests."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from declarun.dockerfile.copyplan import CopyPlan, Owner, parse_chown, plan_copy
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.evaluate import CopySpec, evaluate_stage
from declarun.dockerfile.graph import plan_build
from declarun.dockerfile.ignore import PatternMatcher
from declarun.dockerfile.parse import parse_dockerfile
from declarun.dockerfile.platform import Platform
from declarun.dockerfile.sourcedigest import (
    classic_entry_hash,
    classic_source_hash,
    combine_classic_hashes,
    sources_digest,
)

AMD64 = Platform("linux", "amd64")


def spec(line: str, workdir: str = "/") -> CopySpec:
    text = f"FROM busybox AS src\nFROM scratch\nWORKDIR {workdir}\n{line}\n"
    plan = plan_build(parse_dockerfile(text), build_platform=AMD64)
    step = evaluate_stage(plan, 1, None).steps[-1]
    assert step.copy is not None
    return step.copy


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("hello\n")
    (root / "b.txt").write_text("b\n")
    (root / "dir" / "x").write_text("x\n")
    (root / "dir" / "sub" / "y").write_text("y\n")
    (root / "dir" / "sub").chmod(0o700)
    (root / "dir" / "abs").symlink_to("/etc/passwd")
    (root / "tolink").symlink_to("dir/x")
    (root / "escape").symlink_to("../../../../etc/hostname")
    os.link(root / "dir" / "x", root / "dir" / "hard")
    return root


def paths(plan: CopyPlan) -> list[tuple[str, str]]:
    return [(e.path, e.kind) for e in plan.entries]


def test_file_to_path_to_directory_and_into_existing_directory(ctx: Path) -> None:
    assert paths(plan_copy(spec("COPY a.txt /dst"), ctx)) == [("/dst", "file")]
    assert paths(plan_copy(spec("COPY a.txt /dst/"), ctx)) == [
        ("/dst", "dir"),
        ("/dst/a.txt", "file"),
    ]
    into = plan_copy(spec("COPY a.txt /etc"), ctx, is_dir=lambda p: p == "/etc")
    assert paths(into) == [("/etc", "dir"), ("/etc/a.txt", "file")]
    assert into.entries[0].create_only


def test_relative_destination_uses_workdir(ctx: Path) -> None:
    plan = plan_copy(spec("COPY a.txt rel/", workdir="/app"), ctx)
    assert paths(plan)[-1] == ("/app/rel/a.txt", "file")


def test_directory_copies_its_contents(ctx: Path) -> None:
    plan = plan_copy(spec("COPY dir /d"), ctx)
    assert paths(plan) == [
        ("/d", "dir"),
        ("/d/abs", "symlink"),
        ("/d/hard", "file"),
        ("/d/sub", "dir"),
        ("/d/sub/y", "file"),
        ("/d/x", "hardlink"),
    ]
    entries = {e.path: e for e in plan.entries}
    assert entries["/d"].mode == 0o755 and entries["/d/sub"].mode == 0o700
    assert entries["/d/abs"].link == "/etc/passwd"
    assert entries["/d/x"].link == "/d/hard"


def test_several_sources_need_a_directory(ctx: Path) -> None:
    with pytest.raises(CopySourceError, match="destination must be a directory and end with a /"):
        plan_copy(spec("COPY a.txt b.txt /dst"), ctx)
    with pytest.raises(CopySourceError, match="destination must be a directory"):
        plan_copy(spec("COPY *.txt /dst"), ctx)
    assert [p for p, _ in paths(plan_copy(spec("COPY *.txt /dst/"), ctx))] == [
        "/dst",
        "/dst/a.txt",
        "/dst/b.txt",
    ]


def test_wildcard_without_match_and_missing_source(ctx: Path) -> None:
    with pytest.raises(CopySourceError, match="no source files were specified"):
        plan_copy(spec("COPY nomatch* /x/"), ctx)
    with pytest.raises(CopySourceError) as caught:
        plan_copy(spec("COPY missing /x/"), ctx)
    assert str(caught.value) == (
        "file not found in build context or excluded by .dockerignore: "
        "stat missing: file does not exist"
    )


def test_sources_stay_inside_the_root(ctx: Path) -> None:
    with pytest.raises(CopySourceError, match=r"forbidden path outside the build context: \.\./a"):
        plan_copy(spec("COPY ../a.txt /x"), ctx)
    with pytest.raises(CopySourceError, match="forbidden path outside"):
        plan_copy(spec("COPY dir/../../a.txt /x"), ctx)
    assert paths(plan_copy(spec("COPY /a.txt /x"), ctx)) == [("/x", "file")]
    # A link out of the context resolves inside it, where there is nothing.
    with pytest.raises(CopySourceError, match="stat escape: file does not exist"):
        plan_copy(spec("COPY escape /x"), ctx)
    with pytest.raises(CopySourceError, match="stat dir/abs"):
        plan_copy(spec("COPY dir/abs /x"), ctx)


def test_symlink_source_copies_the_target_under_the_link_name(ctx: Path) -> None:
    plan = plan_copy(spec("COPY tolink /dst/"), ctx)
    (entry,) = [e for e in plan.entries if e.kind == "file"]
    assert entry.path == "/dst/tolink" and entry.source == ctx / "dir" / "x"


def test_owners_chown_preserve_and_parents(ctx: Path) -> None:
    chowned = plan_copy(spec("COPY --chown=7:8 a.txt /x/y/"), ctx)
    assert [(e.path, e.uid, e.gid) for e in chowned.entries] == [
        ("/x", 7, 8),
        ("/x/y", 7, 8),
        ("/x/y/a.txt", 7, 8),
    ]
    dir_copy = plan_copy(spec("COPY --chown=7 dir /a/b/"), ctx)
    owners = {e.path: (e.uid, e.gid) for e in dir_copy.entries}
    assert owners["/a"] == (0, 0) and owners["/a/b"] == (7, 7) and owners["/a/b/x"] == (7, 7)
    preserved = plan_copy(spec("COPY --from=src a.txt /p"), ctx)
    st = (ctx / "a.txt").stat()
    assert (preserved.entries[0].uid, preserved.entries[0].gid) == (st.st_uid, st.st_gid)


def test_chmod_applies_to_copied_files_and_dirs(ctx: Path) -> None:
    plan = plan_copy(spec("COPY --chmod=0640 dir /d/"), ctx)
    modes = {e.path: e.mode for e in plan.entries}
    assert modes["/d/x"] == modes["/d/sub"] == 0o640
    assert modes["/d/abs"] == 0o777
    with pytest.raises(CopySourceError, match="invalid chmod"):
        plan_copy(spec("COPY --chmod=u+x a.txt /d"), ctx)


def test_parse_chown_names_from_the_image() -> None:
    passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n"
    group = "root:x:0:\nstaff:x:50:\napp:x:1002:\n"
    assert parse_chown("7") == Owner(7, 7)
    assert parse_chown("app:staff", passwd=passwd, group=group) == Owner(1000, 50)
    assert parse_chown("app", passwd=passwd, group=group) == Owner(1000, 1002)
    assert parse_chown("app", passwd=passwd, group="") == Owner(1000, 1001)
    with pytest.raises(CopySourceError, match="no such user: nobody"):
        parse_chown("nobody", passwd=passwd)
    with pytest.raises(CopySourceError, match="invalid chown string"):
        parse_chown("a:b:c")


def test_add_extracts_local_archives_but_not_urls(ctx: Path) -> None:
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as archive:
        info = tarfile.TarInfo("o.txt")
        info.size = 2
        archive.addfile(info, io.BytesIO(b"o\n"))
    (ctx / "arch.tgz").write_bytes(gzip.compress(payload.getvalue()))
    plan = plan_copy(spec("ADD arch.tgz https://example.com/f.bin /opt/"), ctx)
    (extraction,) = plan.extractions
    assert (extraction.dest, extraction.compression) == ("/opt", "gzip")
    (download,) = plan.downloads
    assert download.url == "https://example.com/f.bin" and download.into_directory
    copied = plan_copy(spec("COPY arch.tgz /opt/"), ctx)
    assert paths(copied)[-1] == ("/opt/arch.tgz", "file")
    with pytest.raises(CopySourceError, match="source can't be a URL for COPY"):
        plan_copy(spec("COPY https://example.com/f /x"), ctx)


def test_heredoc_sources(ctx: Path) -> None:
    text = "COPY <<EOF /etc/motd\nhello\nEOF"
    plan = plan_copy(spec(text), ctx)
    (entry,) = plan.entries[-1:]
    assert (entry.path, entry.kind, entry.data, entry.mode) == (
        "/etc/motd",
        "inline",
        b"hello\n",
        0o644,
    )


def test_dockerignore_hides_sources_from_the_planner(ctx: Path) -> None:
    matcher = PatternMatcher(["*.txt"])
    with pytest.raises(CopySourceError, match=r"excluded by \.dockerignore"):
        plan_copy(spec("COPY a.txt /x"), ctx, matcher=matcher)
    with pytest.raises(CopySourceError, match="no source files"):
        plan_copy(spec("COPY *.txt /x/"), ctx, matcher=matcher)


def test_sources_digest_follows_content_mode_owner_not_time(ctx: Path) -> None:
    line = "COPY dir /d/"
    first = sources_digest(plan_copy(spec(line), ctx))
    os.utime(ctx / "dir" / "x", (1, 1))
    assert sources_digest(plan_copy(spec(line), ctx)) == first
    assert sources_digest(plan_copy(spec("COPY --chown=1 dir /d/"), ctx)) != first
    (ctx / "dir" / "sub" / "y").write_text("changed\n")
    second = sources_digest(plan_copy(spec(line), ctx))
    assert second != first
    (ctx / "dir" / "sub" / "y").chmod(0o600)
    assert sources_digest(plan_copy(spec(line), ctx)) != second


def test_sources_digest_takes_known_content_digests(ctx: Path) -> None:
    import hashlib

    plan = plan_copy(spec("COPY dir /d/"), ctx)
    asked: list[Path] = []

    def known(path: Path) -> str | None:
        asked.append(path)
        return hashlib.sha256(path.read_bytes()).hexdigest() if path.name == "y" else None

    assert sources_digest(plan, known=known) == sources_digest(plan)
    assert {p.name for p in asked} == {"hard", "y"}  # x is copied as a hard link to "hard"
    assert sources_digest(plan, known=lambda _path: "0" * 64) != sources_digest(plan)


def test_classic_hashes_combine_like_dockerd(ctx: Path) -> None:
    single = classic_source_hash(plan_copy(spec("COPY a.txt /x"), ctx))
    assert single == "file:" + classic_entry_hash(ctx, "a.txt")
    multi = classic_source_hash(plan_copy(spec("COPY a.txt b.txt /x/"), ctx))
    assert multi == combine_classic_hashes([single, "file:" + classic_entry_hash(ctx, "b.txt")])
    assert multi.startswith("multi:")
    assert classic_source_hash(plan_copy(spec("COPY dir /x"), ctx)).startswith("dir:")
    # A link whose target is missing hashes as its own path (dockerd's fallback).
    assert classic_entry_hash(ctx, "dir/abs") == "dir/abs"
    with pytest.raises(ValueError, match="downloaded"):
        classic_source_hash(plan_copy(spec("ADD https://example.com/x /x"), ctx))


_names = st.text(alphabet="abc", min_size=1, max_size=3)


@settings(max_examples=40, deadline=None)
@given(dest=st.lists(_names, min_size=1, max_size=3).map("/".join), slash=st.booleans())
def test_destination_rule_properties(
    tmp_path_factory: pytest.TempPathFactory, dest: str, slash: bool
) -> None:
    root = tmp_path_factory.mktemp("prop")
    (root / "f").write_text("f")
    target = "/" + dest + ("/" if slash else "")
    plan = plan_copy(spec(f"COPY f {target}"), root)
    written = plan.entries[-1]
    expected = "/" + dest + ("/f" if slash else "")
    assert written.path == expected
    # Every parent of what is written is planned before it, created only if missing.
    parents = [e.path for e in plan.entries[:-1]]
    assert all(e.create_only for e in plan.entries[:-1])
    assert parents == [
        "/" + "/".join(expected.strip("/").split("/")[:i]) for i in range(1, expected.count("/"))
    ]
