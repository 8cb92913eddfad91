"""The content store: blobs addressed by digest, kept as an OCI image layout.

Layout under the store root (``<data-root>/content``)::

    oci-layout                    {"imageLayoutVersion": "1.0.0"}
    index.json                    every image the metadata database knows (see write_index)
    blobs/<alg>/<hex>             committed blobs, read-only, never partial
    ingest/<sha256(ref)>/         one write in progress: data, ref, lock

The seams follow containerd: a ``Provider`` reads, an ``Ingester`` writes, a ``Manager``
deletes and lists; ``Store`` is all three. ``LocalStore`` is the one implementation.

A write is keyed by a *ref* (any string naming the download, e.g. ``layer-sha256:...``).
Its data grows in ``ingest/.../data``, so an interrupted download resumes from
``Writer.offset``. ``commit`` fsyncs, verifies size and digest, and renames the file into
``blobs/`` (then fsyncs the directory): a blob path either does not exist or holds the
verified content. A wrong digest discards the data. An ``flock`` on the ref's lock file
makes a second writer of the same ref wait (threads and processes alike); when it gets
the lock and the blob is already there, it learns so through ``BlobExistsError``.

``index.json`` is not this module's to decide: the metadata database is the authority on
names, and the daemon wires them together once (and rewrites the index at start-up)::

    db.subscribe(lambda: store.write_index(db.oci_index()))
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable

from declarun.daemon.images import mediatypes
from declarun.daemon.images.platform import Platform
from declarun.errdefs import Conflict, NotFound, Unavailable
from declarun.errors import ContentError

__all__ = [
    "ANNOTATION_IMAGE_NAME",
    "ANNOTATION_REF_NAME",
    "BlobExistsError",
    "BlobInfo",
    "BlobNotFoundError",
    "Descriptor",
    "IngestLockedError",
    "IngestStatus",
    "Ingester",
    "LocalStore",
    "Manager",
    "Provider",
    "Store",
    "Writer",
    "import_layout",
    "parse_digest",
]

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
ANNOTATION_IMAGE_NAME = "io.containerd.image.name"
_LAYOUT_VERSION = "1.0.0"
_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_CHUNK = 1 << 20
# Manifests and configs are parsed in memory; a hostile layout must not make us read GBs.
_MAX_JSON_BLOB = 8 << 20


class BlobNotFoundError(ContentError, NotFound):
    """No committed blob has this digest."""


class BlobExistsError(ContentError, Conflict):
    """The blob a writer was opened for is already committed; nothing to write."""


class IngestLockedError(ContentError, Unavailable):
    """Another writer holds the ref and the caller asked not to wait."""


def parse_digest(digest: str) -> tuple[str, str]:
    """Split ``alg:hex`` into its parts, refusing anything that is not a supported digest.

    Strict on purpose: the hex part becomes a file name under ``blobs/``.
    """
    algorithm, sep, encoded = digest.partition(":")
    length = _HEX_LENGTH.get(algorithm)
    if (
        not sep
        or length is None
        or len(encoded) != length
        or encoded.strip("0123456789abcdef") != ""
    ):
        raise ContentError(f"invalid or unsupported digest {digest!r}")
    return algorithm, encoded


@dataclass(frozen=True)
class Descriptor:
    """An OCI content descriptor: what a blob is, its digest and size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The descriptor as it appears in an OCI index or manifest."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_json(cls, raw: Any) -> Descriptor:
        """Parse a descriptor object, raising ``ContentError`` when it is malformed."""
        if not isinstance(raw, Mapping):
            raise ContentError("descriptor is not an object")
        media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise ContentError("descriptor lacks mediaType or digest")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise ContentError(f"descriptor {digest} has an invalid size")
        parse_digest(digest)
        plat = raw.get("platform")
        platform = None
        if isinstance(plat, Mapping) and isinstance(plat.get("os"), str):
            variant = plat.get("variant")
            platform = Platform(
                str(plat["os"]),
                str(plat.get("architecture", "")),
                variant if isinstance(variant, str) and variant else None,
            )
        annotations = raw.get("annotations")
        ann = (
            {str(k): str(v) for k, v in annotations.items()}
            if isinstance(annotations, Mapping)
            else {}
        )
        return cls(media_type, digest, size, platform, ann)


@dataclass(frozen=True)
class BlobInfo:
    """A committed blob: digest, size, and when it was committed (mtime, epoch seconds)."""

    digest: str
    size: int
    committed_at: float


@dataclass(frozen=True)
class IngestStatus:
    """A write in progress (or abandoned): its ref, bytes so far, and last activity."""

    ref: str
    offset: int
    updated_at: float


class Writer(Protocol):
    """One ingest: append chunks, then ``commit``. ``close`` without commit keeps the data."""

    @property
    def ref(self) -> str: ...

    @property
    def offset(self) -> int: ...

    def hasher(self) -> hashlib._Hash: ...

    def write(self, data: bytes) -> int: ...

    def truncate(self) -> None: ...

    def commit(self, size: int | None = None, digest: str | None = None) -> BlobInfo: ...

    def close(self) -> None: ...

    def __enter__(self) -> Writer: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class Provider(Protocol):
    """Read access to committed blobs."""

    def info(self, digest: str) -> BlobInfo: ...

    def exists(self, digest: str) -> bool: ...

    def open(self, digest: str) -> BinaryIO: ...

    def read(self, digest: str) -> bytes: ...


@runtime_checkable
class Ingester(Protocol):
    """Write access: a writer per ref."""

    def writer(
        self,
        ref: str,
        *,
        expected: str | None = None,
        size: int | None = None,
        wait: bool = True,
    ) -> Writer: ...


@runtime_checkable
class Manager(Protocol):
    """Listing and removal of blobs and ingests."""

    def delete(self, digest: str) -> None: ...

    def list(self) -> Iterator[BlobInfo]: ...

    def ingests(self) -> builtins.list[IngestStatus]: ...

    def abort(self, ref: str, *, wait: bool = True) -> bool: ...


@runtime_checkable
class Store(Provider, Ingester, Manager, Protocol):
    """A whole content store."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


class _LocalWriter:
    """A ``Writer`` over ``ingest/<key>/data``, holding the ref's flock until closed."""

    def __init__(
        self,
        store: LocalStore,
        ref: str,
        directory: Path,
        lock_fd: int,
        expected: str | None,
        size: int | None,
    ) -> None:
        self._store, self._ref, self._dir, self._lock_fd = store, ref, directory, lock_fd
        self._expected, self._size = expected, size
        algorithm = parse_digest(expected)[0] if expected else "sha256"
        self._hash = hashlib.new(algorithm)
        self._fd = os.open(directory / "data", os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        self._offset = 0
        self._closed = False
        # Resume: the hash state cannot be saved, so rehash what an earlier attempt wrote.
        with open(directory / "data", "rb") as existing:
            while chunk := existing.read(_CHUNK):
                self._hash.update(chunk)
                self._offset += len(chunk)
        if size is not None and self._offset > size:
            self.truncate()

    @property
    def ref(self) -> str:
        """The ref this writer holds."""
        return self._ref

    @property
    def offset(self) -> int:
        """Bytes written so far (including by an earlier, interrupted attempt)."""
        return self._offset

    def hasher(self) -> hashlib._Hash:
        """A copy of the running hash over the bytes so far (to resume a verified download)."""
        return self._hash.copy()

    def write(self, data: bytes) -> int:
        """Append ``data``; refuse (and discard everything) past the expected size."""
        self._check_open()
        if self._size is not None and self._offset + len(data) > self._size:
            self._discard()
            raise ContentError(
                f"{self._ref}: more data than the expected {self._size} bytes; discarded"
            )
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._hash.update(data)
        self._offset += len(data)
        return len(data)

    def truncate(self) -> None:
        """Start over from zero (when a server ignores a ``Range`` request)."""
        self._check_open()
        os.ftruncate(self._fd, 0)
        algorithm = parse_digest(self._expected)[0] if self._expected else "sha256"
        self._hash = hashlib.new(algorithm)
        self._offset = 0

    def commit(self, size: int | None = None, digest: str | None = None) -> BlobInfo:
        """Verify and publish the blob. A mismatch discards the data and raises ContentError.

        ``size``/``digest`` default to those given when the writer was opened; with neither,
        the content's own sha256 names it (for content that is not known in advance).
        """
        self._check_open()
        want_size = size if size is not None else self._size
        want_digest = digest if digest is not None else self._expected
        os.fsync(self._fd)
        actual = f"{self._hash.name}:{self._hash.hexdigest()}"
        if want_digest is not None:
            algorithm, _ = parse_digest(want_digest)
            if algorithm != self._hash.name:
                hasher = hashlib.new(algorithm)
                with open(self._dir / "data", "rb") as data:
                    while chunk := data.read(_CHUNK):
                        hasher.update(chunk)
                actual = f"{algorithm}:{hasher.hexdigest()}"
        if want_size is not None and want_size != self._offset:
            self._discard()
            raise ContentError(
                f"{self._ref}: size mismatch: expected {want_size} bytes, got {self._offset}"
            )
        if want_digest is not None and want_digest != actual:
            self._discard()
            raise ContentError(
                f"{self._ref}: digest mismatch: expected {want_digest}, got {actual}; discarded"
            )
        target = self._store.blob_path(actual)
        if target.exists():
            # Same digest, same bytes: another ref committed it first. Ours is redundant.
            self._discard()
        else:
            os.fchmod(self._fd, 0o444)
            os.rename(self._dir / "data", target)
            _fsync_dir(target.parent)
            self._discard()
        return self._store.info(actual)

    def close(self) -> None:
        """Release the ref; uncommitted data stays for a later resume."""
        if self._closed:
            return
        self._closed = True
        os.close(self._fd)
        _unlock(self._lock_fd)

    def _discard(self) -> None:
        """Remove the ingest directory (while still holding its lock) and close."""
        shutil.rmtree(self._dir, ignore_errors=True)
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise ContentError(f"{self._ref}: writer is closed")

    def __enter__(self) -> _LocalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _chunks(source: BinaryIO | Iterable[bytes]) -> Iterator[bytes]:
    if hasattr(source, "read"):
        reader = cast(BinaryIO, source)
        while chunk := reader.read(_CHUNK):
            yield chunk
    else:
        yield from source


def _unlock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class LocalStore:
    """A content ``Store`` in an OCI image layout directory on the local filesystem."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._index_lock = threading.Lock()
        for sub in ("blobs/sha256", "ingest"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".*.json.*"):
            leftover.unlink(missing_ok=True)  # temp files of an index write cut short
        for leftover in self.root.glob(".oci-layout.*"):
            leftover.unlink(missing_ok=True)
        layout = self.root / "oci-layout"
        if not layout.exists():
            _atomic_write(layout, json.dumps({"imageLayoutVersion": _LAYOUT_VERSION}).encode())
        if not (self.root / "index.json").exists():
            self.write_index(())

    # -- Provider ----------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        """Where the blob with ``digest`` lives (whether or not it exists)."""
        algorithm, encoded = parse_digest(digest)
        directory = self.root / "blobs" / algorithm
        if algorithm != "sha256":
            directory.mkdir(parents=True, exist_ok=True)
        return directory / encoded

    def info(self, digest: str) -> BlobInfo:
        """Size and commit time of a blob; ``BlobNotFoundError`` if absent."""
        try:
            st = self.blob_path(digest).stat()
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found") from None
        return BlobInfo(digest, st.st_size, st.st_mtime)

    def exists(self, digest: str) -> bool:
        """True when the blob is committed."""
        return self.blob_path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """The blob opened for reading (the caller closes it)."""
        try:
            return open(self.blob_path(digest), "rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found") from None

    def read(self, digest: str, *, limit: int = _MAX_JSON_BLOB) -> bytes:
        """The whole blob, verified against its digest (for manifests and configs)."""
        with self.open(digest) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise ContentError(f"blob {digest} is larger than {limit} bytes")
        algorithm, encoded = parse_digest(digest)
        if hashlib.new(algorithm, data).hexdigest() != encoded:
            raise ContentError(f"blob {digest} is corrupt: its content does not match")
        return data

    def verify(self, digest: str) -> BlobInfo:
        """Rehash a committed blob; ``ContentError`` if its content no longer matches."""
        algorithm, encoded = parse_digest(digest)
        hasher = hashlib.new(algorithm)
        with self.open(digest) as handle:
            while chunk := handle.read(_CHUNK):
                hasher.update(chunk)
        if hasher.hexdigest() != encoded:
            raise ContentError(f"blob {digest} is corrupt: its content does not match")
        return self.info(digest)

    # -- Ingester ----------------------------------------------------------------------

    def _ingest_dir(self, ref: str) -> Path:
        # Refs are free text; hashing them gives a safe, fixed-length directory name.
        return self.root / "ingest" / hashlib.sha256(ref.encode()).hexdigest()

    def _lock(self, directory: Path, ref: str, wait: bool) -> int:
        """Take the ref's flock, retrying if the lock file was replaced while we waited."""
        while True:
            # Not Path.mkdir(exist_ok=True): it re-raises if a committing writer removes
            # the directory between its mkdir and its is_dir check.
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o700)
            lock_path = directory / "lock"
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except FileNotFoundError:
                continue  # the directory was discarded between mkdir and open
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except OSError as err:
                os.close(fd)
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise IngestLockedError(f"ref {ref!r} is being written") from None
                raise
            # The previous holder may have committed and removed the directory (and so
            # this lock file) while we waited: then our lock guards nothing; start over.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(lock_path))
            except FileNotFoundError:
                same = False
            if same:
                return fd
            _unlock(fd)

    def writer(
        self,
        ref: str,
        *,
        expected: str | None = None,
        size: int | None = None,
        wait: bool = True,
    ) -> _LocalWriter:
        """Open (or resume) the ingest named ``ref``.

        Blocks while another writer holds ``ref`` (unless ``wait`` is False, then
        ``IngestLockedError``). Raises ``BlobExistsError`` if ``expected`` is already
        committed, so a second downloader of the same blob simply skips it.
        """
        if not ref:
            raise ContentError("an ingest needs a non-empty ref")
        if expected is not None:
            parse_digest(expected)
            if self.exists(expected):
                raise BlobExistsError(f"blob {expected} already exists")
        directory = self._ingest_dir(ref)
        fd = self._lock(directory, ref, wait)
        try:
            if expected is not None and self.exists(expected):
                shutil.rmtree(directory, ignore_errors=True)
                raise BlobExistsError(f"blob {expected} already exists")
            (directory / "ref").write_text(ref)
            return _LocalWriter(self, ref, directory, fd, expected, size)
        except BaseException:
            _unlock(fd)
            raise

    def ingest(
        self,
        ref: str,
        source: BinaryIO | Iterable[bytes],
        *,
        expected: str | None = None,
        size: int | None = None,
    ) -> BlobInfo:
        """Write a whole blob from a file or chunks; an existing blob is kept as is."""
        try:
            writer = self.writer(ref, expected=expected, size=size)
        except BlobExistsError:
            assert expected is not None
            return self.info(expected)
        with writer:
            if writer.offset:
                writer.truncate()  # the source starts at zero, so must we
            for chunk in _chunks(source):
                writer.write(chunk)
            return writer.commit()

    def put(self, data: bytes, *, expected: str | None = None) -> BlobInfo:
        """Store a small in-memory blob (a manifest or config) and return its info."""
        digest = expected or f"sha256:{hashlib.sha256(data).hexdigest()}"
        return self.ingest(f"put-{digest}", [data], expected=digest, size=len(data))

    # -- Manager -----------------------------------------------------------------------

    def delete(self, digest: str) -> None:
        """Remove a committed blob; ``BlobNotFoundError`` if absent."""
        path = self.blob_path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found") from None
        _fsync_dir(path.parent)

    def list(self) -> Iterator[BlobInfo]:
        """Every committed blob."""
        blobs = self.root / "blobs"
        for alg_dir in sorted(blobs.iterdir()):
            if alg_dir.name not in _HEX_LENGTH or not alg_dir.is_dir():
                continue
            for entry in os.scandir(alg_dir):
                digest = f"{alg_dir.name}:{entry.name}"
                try:
                    parse_digest(digest)
                    st = entry.stat()
                except (ContentError, FileNotFoundError):
                    continue  # a stray file, or deleted since we listed
                yield BlobInfo(digest, st.st_size, st.st_mtime)

    def ingests(self) -> builtins.list[IngestStatus]:
        """Every ingest directory with its ref and current size."""
        out = []
        for entry in sorted(os.scandir(self.root / "ingest"), key=lambda e: e.name):
            directory = Path(entry.path)
            try:
                ref = (directory / "ref").read_text()
            except (FileNotFoundError, NotADirectoryError):
                continue  # being created or discarded right now
            try:
                st = (directory / "data").stat()
                offset, updated = st.st_size, st.st_mtime
            except FileNotFoundError:
                offset, updated = 0, 0.0
            out.append(IngestStatus(ref, offset, updated))
        return out

    def abort(self, ref: str, *, wait: bool = True) -> bool:
        """Discard the ingest ``ref``. With ``wait=False`` an active writer keeps it (False)."""
        directory = self._ingest_dir(ref)
        if not directory.exists():
            return False
        try:
            fd = self._lock(directory, ref, wait)
        except IngestLockedError:
            return False
        try:
            shutil.rmtree(directory, ignore_errors=True)
        finally:
            _unlock(fd)
        return True

    # -- OCI layout index --------------------------------------------------------------

    def write_index(self, manifests: Iterable[Descriptor]) -> None:
        """Atomically replace ``index.json`` with these manifest descriptors.

        The caller (the metadata side) passes one descriptor per image name, annotated
        with ``org.opencontainers.image.ref.name`` so that ``skopeo``/``umoci`` find them.
        """
        doc = {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_INDEX,
            "manifests": [
                d.to_json()
                for d in sorted(
                    manifests, key=lambda d: (d.annotations.get(ANNOTATION_REF_NAME, ""), d.digest)
                )
            ],
        }
        data = (json.dumps(doc, indent=2) + "\n").encode()
        with self._index_lock:
            _atomic_write(self.root / "index.json", data)

    def read_index(self) -> builtins.list[Descriptor]:
        """The manifest descriptors currently in ``index.json``."""
        return _read_index(self.root)


def _read_index(root: Path) -> list[Descriptor]:
    try:
        doc = json.loads((root / "index.json").read_bytes())
    except (OSError, ValueError) as err:
        raise ContentError(f"{root}: cannot read index.json: {err}") from None
    manifests = doc.get("manifests") if isinstance(doc, dict) else None
    if not isinstance(manifests, list):
        raise ContentError(f"{root}: index.json has no manifests list")
    return [Descriptor.from_json(m) for m in manifests]


def _children(media_type: str, data: bytes) -> list[Descriptor]:
    """Descriptors a manifest or index points to (config and layers, or manifests)."""
    if media_type not in mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES:
        return []
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise ContentError(f"{media_type} blob is not valid JSON") from None
    if not isinstance(doc, dict):
        raise ContentError(f"{media_type} blob is not a JSON object")
    if media_type in mediatypes.INDEX_TYPES:
        entries = doc.get("manifests", [])
        if not isinstance(entries, list):
            raise ContentError("index 'manifests' is not a list")
        return [Descriptor.from_json(m) for m in entries]
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise ContentError("manifest 'layers' is not a list")
    return [Descriptor.from_json(doc.get("config")), *(Descriptor.from_json(x) for x in layers)]


def import_layout(store: LocalStore, path: str | os.PathLike[str]) -> list[Descriptor]:
    """Verify and ingest every blob reachable from a foreign OCI layout's ``index.json``.

    Each blob is checked against its descriptor's digest and size while it is copied;
    a mismatch raises ``ContentError`` and stores nothing for that blob. Layers marked
    non-distributable (with ``urls``) may be absent. Returns the layout's top-level
    descriptors (with their annotations) so the caller can register images and names.
    """
    root = Path(path)
    try:
        layout = json.loads((root / "oci-layout").read_bytes())
    except (OSError, ValueError) as err:
        raise ContentError(f"{root} is not an OCI image layout: {err}") from None
    if not isinstance(layout, dict) or layout.get("imageLayoutVersion") != _LAYOUT_VERSION:
        raise ContentError(f"{root}: unsupported imageLayoutVersion")
    top = _read_index(root)
    pending, seen = list(top), set()
    while pending:
        desc = pending.pop()
        if desc.digest in seen:
            continue
        seen.add(desc.digest)
        algorithm, encoded = parse_digest(desc.digest)
        source = root / "blobs" / algorithm / encoded
        if not source.is_file():
            if "nondistributable" in desc.media_type or "foreign" in desc.media_type:
                continue  # such layers are fetched from their URLs, not shipped in layouts
            raise ContentError(f"{root}: blob {desc.digest} is missing")
        with open(source, "rb") as handle:
            store.ingest(f"import-{desc.digest}", handle, expected=desc.digest, size=desc.size)
        if desc.media_type in mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES:
            pending.extend(_children(desc.media_type, store.read(desc.digest)))
    return top
