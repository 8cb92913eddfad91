"""User resolution through the container root's passwd/group, never leaving that root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from declarun.daemon.containers.rootfs.inroot import read_file_in_root
from declarun.daemon.containers.runtime.users import ResolvedUser, UnknownUserError, resolve_user
from tests.support.rootfs import GROUP, PASSWD


@pytest.fixture
def root(tmp_path: Path) -> Path:
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "passwd").write_text(PASSWD)
    (rootfs / "etc" / "group").write_text(GROUP)
    return rootfs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", ResolvedUser(0, 0, (63,), "/root")),
        ("root", ResolvedUser(0, 0, (63,), "/root")),
        ("app", ResolvedUser(1000, 1000, (50, 63), "/home/app")),
        ("1000", ResolvedUser(1000, 1000, (50, 63), "/home/app")),
        ("app:staff", ResolvedUser(1000, 50, (), "/home/app")),
        ("app:4242", ResolvedUser(1000, 4242, (), "/home/app")),
        ("4321", ResolvedUser(4321, 0, (), "/")),
        ("4321:77", ResolvedUser(4321, 77, (), "/")),
        ("nobody", ResolvedUser(65534, 65534, (), "/nonexistent")),
    ],
)
def test_specs_resolve(root: Path, spec: str, expected: ResolvedUser) -> None:
    assert resolve_user(root, spec) == expected


def test_group_add(root: Path) -> None:
    user = resolve_user(root, "nobody", ["staff", "999"])
    assert user.additional_gids == (50, 999)


def test_unknown_names_get_dockers_messages(root: Path) -> None:
    with pytest.raises(UnknownUserError) as caught:
        resolve_user(root, "ghost")
    assert str(caught.value) == "unable to find user ghost: no matching entries in passwd file"
    with pytest.raises(UnknownUserError, match="unable to find group ghosts: no matching"):
        resolve_user(root, "app:ghosts")
    with pytest.raises(UnknownUserError, match="range 0-2147483647"):
        resolve_user(root, "99999999999")


def test_missing_files_numeric_still_works(tmp_path: Path) -> None:
    assert resolve_user(tmp_path, "123:45") == ResolvedUser(123, 45, (), "/")
    with pytest.raises(UnknownUserError):
        resolve_user(tmp_path, "app")


def _host_passwd(tmp_path: Path) -> Path:
    outside = tmp_path / "host-passwd"
    outside.write_text("evil:x:4242:4242::/evil:/bin/sh\n")
    return outside


def test_absolute_symlink_to_host_file_is_not_followed(tmp_path: Path, root: Path) -> None:
    outside = _host_passwd(tmp_path)
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to(outside)  # re-rooted: <root>/<tmp>/host-passwd
    with pytest.raises(UnknownUserError, match="unable to find user evil"):
        resolve_user(root, "evil")


def test_relative_escape_is_clamped_at_the_root(tmp_path: Path, root: Path) -> None:
    _host_passwd(tmp_path)
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("../../../../../../../host-passwd")
    with pytest.raises(UnknownUserError):
        resolve_user(root, "evil")
    # ".." stops at the container root, so the link means <root>/host-passwd:
    (root / "host-passwd").write_text("inside:x:7:7::/in:/bin/sh\n")
    assert resolve_user(root, "inside").uid == 7


def test_directory_symlink_to_host_is_not_followed(tmp_path: Path, root: Path) -> None:
    fake_etc = tmp_path / "hostetc"
    fake_etc.mkdir()
    (fake_etc / "passwd").write_text("evil:x:4242:4242::/:/bin/sh\n")
    os.rename(root / "etc", root / "etc.old")
    (root / "etc").symlink_to(fake_etc)
    assert read_file_in_root(root, "/etc/passwd") is None


def test_symlinks_inside_the_root_are_followed(root: Path) -> None:
    (root / "usr" / "share").mkdir(parents=True)
    os.rename(root / "etc" / "passwd", root / "usr" / "share" / "passwd")
    (root / "etc" / "passwd").symlink_to("/usr/share/passwd")
    assert resolve_user(root, "app").uid == 1000


def test_symlink_loop_and_fifo_do_not_hang(root: Path) -> None:
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("passwd")
    assert read_file_in_root(root, "/etc/passwd") is None
    (root / "etc" / "group").unlink()
    os.mkfifo(root / "etc" / "group")
    assert read_file_in_root(root, "/etc/group") is None
