"""declarund's configuration (its command-line flags), validated into a frozen value.

Every check that dockerd makes on its equivalent flags is made here, before anything is
started, so a bad flag is a clear :class:`~declarun.errors.DaemonError` and never a
half-started daemon.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from declarun.errors import DaemonError

__all__ = [
    "DEFAULT_DATA_ROOT",
    "DEFAULT_HOST",
    "DEFAULT_SOCKET",
    "LOG_LEVELS",
    "RUNTIMES",
    "DaemonConfig",
    "ListenAddress",
    "TlsConfig",
    "parse_host",
    "validate_insecure_registry",
    "validate_mirror",
]

DEFAULT_SOCKET = Path("/run/declarun/declarun.sock")
DEFAULT_HOST = f"unix://{DEFAULT_SOCKET}"
DEFAULT_DATA_ROOT = Path("/var/lib/declarun")
RUNTIMES = ("runc", "crun")
LOG_LEVELS = ("debug", "info", "warn", "warning", "error", "fatal")
# dockerd's default port for a TLS TCP listener.
_DEFAULT_TLS_PORT = 2376


@dataclass(frozen=True)
class ListenAddress:
    """One ``--host``: a Unix socket path, or a TCP host and port (TLS only)."""

    scheme: Literal["unix", "tcp"]
    path: Path | None = None
    host: str = ""
    port: int = 0

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


@dataclass(frozen=True)
class TlsConfig:
    """Server certificate and the CA that client certificates must be signed by."""

    cacert: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class DaemonConfig:
    """Everything declarund was started with."""

    data_root: Path = DEFAULT_DATA_ROOT
    hosts: tuple[ListenAddress, ...] = (ListenAddress("unix", DEFAULT_SOCKET),)
    tls: TlsConfig | None = None
    runtime: str = "runc"
    registry_mirrors: tuple[str, ...] = ()
    insecure_registries: tuple[str, ...] = ()
    max_concurrent_downloads: int = 3
    log_level: str = "info"
    #: Where networks created without a subnet get theirs (``--default-address-pool``);
    #: empty: Docker's default pools.
    address_pools: tuple[tuple[ipaddress.IPv4Network, int], ...] = ()

    @property
    def socket_paths(self) -> tuple[Path, ...]:
        """The Unix socket paths among the hosts."""
        return tuple(h.path for h in self.hosts if h.scheme == "unix" and h.path is not None)

    @property
    def lock_path(self) -> Path:
        """The lock file that keeps a second daemon off this data root."""
        return self.data_root / "declarund.lock"

    @classmethod
    def build(
        cls,
        *,
        hosts: Iterable[str] = (),
        data_root: str | Path = DEFAULT_DATA_ROOT,
        tlsverify: bool = False,
        tlscacert: str | Path | None = None,
        tlscert: str | Path | None = None,
        tlskey: str | Path | None = None,
        runtime: str = "runc",
        registry_mirrors: Iterable[str] = (),
        insecure_registries: Iterable[str] = (),
        max_concurrent_downloads: int = 3,
        log_level: str = "info",
        address_pools: Iterable[str] = (),
    ) -> DaemonConfig:
        """Validate raw flag values into a config; raises DaemonError with the reason."""
        parsed = tuple(parse_host(h) for h in hosts) or (ListenAddress("unix", DEFAULT_SOCKET),)
        tls = _build_tls(tlsverify, tlscacert, tlscert, tlskey)
        for address in parsed:
            if address.scheme == "tcp" and tls is None:
                raise DaemonError(
                    f"refusing to listen on {address}: a TCP listener needs --tlsverify with "
                    "--tlscacert, --tlscert and --tlskey (clients must present certificates)"
                )
        if runtime not in RUNTIMES:
            raise DaemonError(f"unknown runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")
        if max_concurrent_downloads < 1:
            raise DaemonError("--max-concurrent-downloads must be at least 1")
        if log_level not in LOG_LEVELS:
            raise DaemonError(
                f"unknown log level {log_level!r}: choose one of {', '.join(LOG_LEVELS)}"
            )
        root = Path(data_root)
        if not root.is_absolute():
            root = Path.cwd() / root
        return cls(
            data_root=root,
            hosts=parsed,
            tls=tls,
            runtime=runtime,
            registry_mirrors=tuple(dict.fromkeys(validate_mirror(m) for m in registry_mirrors)),
            insecure_registries=tuple(
                dict.fromkeys(validate_insecure_registry(r) for r in insecure_registries)
            ),
            max_concurrent_downloads=max_concurrent_downloads,
            log_level="warning" if log_level == "warn" else log_level,
            address_pools=tuple(dict.fromkeys(parse_address_pool(p) for p in address_pools)),
        )


def parse_address_pool(text: str) -> tuple[ipaddress.IPv4Network, int]:
    """``base=10.30.0.0/16,size=24`` (dockerd's ``--default-address-pool``) as the base network
    and the prefix length of the subnets carved from it; DaemonError with the reason."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in ("base", "size") or key.strip() in fields:
            raise DaemonError(
                f"--default-address-pool {text!r}: expected base=CIDR,size=PREFIX-LENGTH"
            )
        fields[key.strip()] = value.strip()
    if set(fields) != {"base", "size"}:
        raise DaemonError(f"--default-address-pool {text!r}: both base= and size= are needed")
    try:
        base = ipaddress.IPv4Network(fields["base"])
    except ValueError as exc:
        raise DaemonError(f"--default-address-pool {text!r}: base: {exc}") from None
    if not fields["size"].isdigit() or not base.prefixlen <= int(fields["size"]) <= 30:
        raise DaemonError(
            f"--default-address-pool {text!r}: size must be a prefix length from "
            f"{base.prefixlen} (the base's) to 30"
        )
    return base, int(fields["size"])


def _build_tls(
    tlsverify: bool,
    cacert: str | Path | None,
    cert: str | Path | None,
    key: str | Path | None,
) -> TlsConfig | None:
    given = {"--tlscacert": cacert, "--tlscert": cert, "--tlskey": key}
    if not tlsverify:
        if any(v is not None for v in given.values()):
            raise DaemonError("--tlscacert, --tlscert and --tlskey need --tlsverify")
        return None
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise DaemonError(f"--tlsverify needs {', '.join(missing)}")
    paths = {flag: Path(str(value)) for flag, value in given.items()}
    for flag, path in paths.items():
        if not path.is_file():
            raise DaemonError(f"{flag} {path}: no such file")
    return TlsConfig(paths["--tlscacert"], paths["--tlscert"], paths["--tlskey"])


def parse_host(text: str) -> ListenAddress:
    """``unix:///path`` or ``tcp://host:port`` (as dockerd's ``-H``); raises DaemonError."""
    if text.startswith("unix://"):
        path = text[len("unix://") :] or str(DEFAULT_SOCKET)
        if not path.startswith("/"):
            raise DaemonError(f"invalid --host {text!r}: the socket path must be absolute")
        return ListenAddress("unix", Path(path))
    if text.startswith("tcp://"):
        parts = urlsplit(text)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise DaemonError(f"invalid --host {text!r}: expected tcp://HOST:PORT")
        try:
            port = parts.port or _DEFAULT_TLS_PORT
        except ValueError:
            raise DaemonError(f"invalid --host {text!r}: bad port") from None
        return ListenAddress("tcp", host=parts.hostname or "127.0.0.1", port=port)
    raise DaemonError(f"invalid --host {text!r}: expected unix:///PATH or tcp://HOST:PORT")


def validate_mirror(text: str) -> str:
    """A ``--registry-mirror`` URL, normalised with a trailing slash as dockerd does."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DaemonError(f"invalid --registry-mirror {text!r}: expected http(s)://HOST[:PORT]")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise DaemonError(
            f"invalid --registry-mirror {text!r}: no credentials, query or fragment allowed"
        )
    return text.rstrip("/") + "/"


def validate_insecure_registry(text: str) -> str:
    """A ``--insecure-registry``: ``HOST[:PORT]`` or a CIDR such as ``10.0.0.0/8``."""
    if "://" in text:
        raise DaemonError(f"insecure registry {text} should not contain '://'")
    if "/" in text:
        try:
            return str(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise DaemonError(f"invalid --insecure-registry {text!r}: not a CIDR") from None
    if not text or any(c.isspace() for c in text):
        raise DaemonError(f"invalid --insecure-registry {text!r}")
    return text
