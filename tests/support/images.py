"""Test images built from Debian's static busybox, as OCI image layouts, and pushed with skopeo.

* ``build_busybox_layout(dest)`` writes an OCI image layout (``oci-layout``, ``index.json``,
  ``blobs/sha256``) holding one image: a gzip rootfs layer with ``/bin/busybox``, applet
  symlinks (sh, echo, cat, ls, sleep, wget, nc, httpd, id, ...), ``/etc/passwd`` and
  ``/etc/group``; config with ``Cmd ["sh"]``; optionally ``extra_layers`` more layers
  (each adds ``/extra/layer-<n>.bin`` of ``extra_layer_size`` pseudo-random bytes).
* ``build_multiplatform_layout(dest)`` writes an OCI index with linux/amd64 and
  linux/arm64/v8 images (the arm64 one shares the layer; only its config differs).
* ``skopeo_push(layout, registry, "busybox:test")`` copies a layout to a test registry.

Everything is deterministic (fixed mtimes, gzip without timestamps), so digests are stable.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.registry import RunningRegistry

__all__ = [
    "APPLETS",
    "BUSYBOX_BINARY",
    "Blob",
    "OciImage",
    "OciIndex",
    "build_busybox_layout",
    "build_multiplatform_layout",
    "skopeo_push",
]

BUSYBOX_BINARY = Path("/bin/busybox")
APPLETS = (
    "sh", "ash", "echo", "true", "false", "cat", "ls", "sleep", "wget", "nc", "httpd", "id",
    "env", "mkdir", "rm", "touch", "printf", "test", "[", "hostname", "ps", "kill", "grep",
    "head", "tail", "wc", "date", "uname", "pwd", "whoami", "mount", "ip", "ping", "stat",
    "chmod", "chown", "cp", "mv", "ln", "sed", "seq", "tee", "top", "vi", "nslookup",
)  # fmt: skip
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
_MTIME = 1_700_000_000
_CREATED = "2023-11-14T22:13:20Z"


@dataclass(frozen=True)
class Blob:
    """A blob written into a layout: its descriptor fields and its bytes."""

    media_type: str
    digest: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """An OCI descriptor for this blob."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class OciImage:
    """One image in a layout: manifest, config and layers (with their diff IDs)."""

    layout: Path
    tag: str
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]
    architecture: str
    variant: str | None = None


@dataclass(frozen=True)
class OciIndex:
    """A multi-platform image: the index blob and its per-platform images."""

    layout: Path
    tag: str
    index: Blob
    images: tuple[OciImage, ...]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _write_blob(layout: Path, media_type: str, data: bytes) -> Blob:
    digest = _digest(data)
    path = layout / "blobs" / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return Blob(media_type, digest, data)


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info.mtime = _MTIME
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _dir(name: str, mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    return info, None


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def _symlink(name: str, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    info.mode = 0o777
    return info, None


def _gzip(data: bytes) -> bytes:
    # mtime=0 and no file name: the same tar always compresses to the same bytes.
    return gzip.compress(data, compresslevel=6, mtime=0)


def busybox_rootfs_tar() -> bytes:
    """The uncompressed base layer: busybox, its applet links, passwd and group."""
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = [
        _dir("bin"),
        _dir("etc"),
        _dir("root", 0o700),
        _dir("tmp", 0o1777),
        _dir("home"),
        _dir("var"),
        _dir("var/www"),
        _dir("proc", 0o555),
        _dir("sys", 0o555),
        _dir("dev"),
        _file("bin/busybox", BUSYBOX_BINARY.read_bytes(), 0o755),
    ]
    entries += [_symlink(f"bin/{applet}", "busybox") for applet in APPLETS]
    entries += [
        _file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
            b"nobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        _file("etc/group", b"root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"),
        _file("etc/hostname", b"busybox\n"),
    ]
    return _tar(entries)


def _extra_layer_tar(index: int, size: int) -> bytes:
    # Pseudo-random bytes do not compress, so layer sizes are what the caller asked for.
    rng = random.Random(index)
    # randbytes takes at most 2**31 bits at once: big layers are made of 1 MiB pieces.
    if size <= 1 << 26:
        data = rng.randbytes(size)
    else:
        data = b"".join(rng.randbytes(min(1 << 20, size - i)) for i in range(0, size, 1 << 20))
    return _tar([_dir("extra"), _file(f"extra/layer-{index}.bin", data)])


def _config(diff_ids: list[str], architecture: str, variant: str | None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "created": _CREATED,
        "architecture": architecture,
        "os": "linux",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": _CREATED, "created_by": f"declarun tests: layer {i}"}
            for i in range(len(diff_ids))
        ],
    }
    if variant:
        config["variant"] = variant
    return config


def _write_layers(
    layout: Path, extra_layers: int, extra_layer_size: int
) -> tuple[list[Blob], list[str]]:
    tars = [busybox_rootfs_tar()]
    tars += [_extra_layer_tar(i + 1, extra_layer_size) for i in range(extra_layers)]
    layers = [_write_blob(layout, OCI_LAYER_GZIP, _gzip(t)) for t in tars]
    return layers, [_digest(t) for t in tars]


def _write_image(
    layout: Path,
    tag: str,
    layers: list[Blob],
    diff_ids: list[str],
    architecture: str,
    variant: str | None,
) -> OciImage:
    config = _write_blob(layout, OCI_CONFIG, _json_bytes(_config(diff_ids, architecture, variant)))
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor() for layer in layers],
    }
    manifest = _write_blob(layout, OCI_MANIFEST, _json_bytes(manifest_doc))
    return OciImage(
        layout, tag, manifest, config, tuple(layers), tuple(diff_ids), architecture, variant
    )


def _write_layout_index(layout: Path, tag: str, top: Blob, platform: dict[str, str] | None) -> None:
    entry = top.descriptor(annotations={"org.opencontainers.image.ref.name": tag})
    if platform:
        entry["platform"] = platform
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}
    (layout / "index.json").write_bytes(_json_bytes(index))


def build_busybox_layout(
    dest: Path,
    *,
    tag: str = "latest",
    extra_layers: int = 0,
    extra_layer_size: int = 4096,
    architecture: str = "amd64",
) -> OciImage:
    """Write a busybox OCI image layout into ``dest`` (created); returns what it wrote."""
    dest.mkdir(parents=True, exist_ok=True)
    layers, diff_ids = _write_layers(dest, extra_layers, extra_layer_size)
    image = _write_image(dest, tag, layers, diff_ids, architecture, None)
    _write_layout_index(dest, tag, image.manifest, {"os": "linux", "architecture": architecture})
    return image


def build_multiplatform_layout(dest: Path, *, tag: str = "latest") -> OciIndex:
    """Write a layout whose tag names an OCI index of linux/amd64 and linux/arm64/v8."""
    dest.mkdir(parents=True, exist_ok=True)
    layers, diff_ids = _write_layers(dest, 0, 0)
    images = (
        _write_image(dest, tag, layers, diff_ids, "amd64", None),
        _write_image(dest, tag, layers, diff_ids, "arm64", "v8"),
    )
    entries = []
    for image in images:
        platform = {"os": "linux", "architecture": image.architecture}
        if image.variant:
            platform["variant"] = image.variant
        entries.append(image.manifest.descriptor(platform=platform))
    index_doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    index = _write_blob(dest, OCI_INDEX, _json_bytes(index_doc))
    _write_layout_index(dest, tag, index, None)
    return OciIndex(dest, tag, index, images)


def _policy_file(directory: Path) -> Path:
    # skopeo refuses to copy without a signature policy; tests accept anything.
    path = directory / "skopeo-policy.json"
    if not path.exists():
        path.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    return path


def skopeo_push(
    layout: Path,
    registry: RunningRegistry,
    target: str,
    *,
    tag: str = "latest",
    all_platforms: bool = False,
    preserve_format: bool = True,
) -> str:
    """``skopeo copy oci:<layout>:<tag> docker://<registry>/<target>``; returns the reference.

    Uses the registry's credentials when it has them; ``all_platforms`` copies every
    image of an index (``--all``). The manifest is pushed as is (digests unchanged).
    """
    dest = f"{registry.host}/{target}"
    command = [
        "skopeo",
        "--policy",
        str(_policy_file(layout)),
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ]
    if preserve_format:
        command.append("--preserve-digests")
    if registry.creds:
        command += ["--dest-creds", registry.creds]
    if all_platforms:
        command.append("--all")
    command += [f"oci:{layout}:{tag}", f"docker://{dest}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"skopeo copy failed ({done.returncode}): {done.stderr.strip()}")
    return dest
