"""Transport to registries: endpoints, TLS-or-plain-HTTP choice, redirects, backoff.

``RegistrySession`` holds what is shared across repositories: one aiohttp session, the
token cache, the auth challenge and the scheme learned per server. Rules, as in dockerd:
``docker.io`` is served by ``registry-1.docker.io`` and, for pulls, by mirrors tried first;
plain HTTP only for loopback hosts and registries configured as insecure (tried over
HTTPS without certificate checks first); redirects are followed by hand so that
``Authorization`` never goes to another origin; backoff is exponential, honouring
``Retry-After``, with a bounded number of retries.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Self

import aiohttp
from yarl import URL

from declarun.daemon.images.auth import (
    Challenge,
    CredentialProvider,
    Credentials,
    RegistryAuthError,
    TokenCache,
    parse_www_authenticate,
)
from declarun.errdefs import NotFound
from declarun.errors import RegistryError
from declarun.reference import DEFAULT_DOMAIN

__all__ = [
    "DOCKER_HUB_HOST",
    "Body",
    "Endpoint",
    "RegistryConfig",
    "RegistryNotFoundError",
    "RegistrySession",
    "connection_cause",
    "error_text",
    "is_loopback_host",
    "retry_after",
]

DOCKER_HUB_HOST = "registry-1.docker.io"
_MAX_REDIRECTS = 10
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# A request body: bytes, or a factory of a fresh async stream per attempt (so retries and
# redirects can send it again).
Body = bytes | Callable[[], AsyncIterator[bytes]] | None


class RegistryNotFoundError(RegistryError, NotFound):
    """The registry has no such repository, manifest or blob."""


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (with or without port/brackets)."""
    name = _strip_port(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _strip_port(host: str) -> str:
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


@dataclass(frozen=True)
class RegistryConfig:
    """How the daemon talks to registries (dockerd's ``--insecure-registry`` and friends).

    ``insecure_registries`` holds ``host[:port]`` names or CIDR ranges; ``mirrors`` are
    base URLs (``https://mirror.example``) tried before Docker Hub for pulls.
    """

    insecure_registries: tuple[str, ...] = ()
    mirrors: tuple[str, ...] = ()
    max_retries: int = 4
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    connect_timeout: float = 30.0
    read_timeout: float = 120.0
    user_agent: str = "declarun/0.1"
    max_connections: int = 16

    def is_insecure(self, host: str) -> bool:
        """Whether ``host`` may be spoken to over plain HTTP (loopback or configured)."""
        if is_loopback_host(host):
            return True
        bare = _strip_port(host)
        for entry in self.insecure_registries:
            if "/" in entry:
                try:
                    if ipaddress.ip_address(bare) in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    continue
            elif entry.lower() in (host.lower(), bare.lower()):
                return True
        return False


@dataclass(frozen=True)
class Endpoint:
    """One server to ask: its base URL, the name credentials are looked up under, and
    whether it is a pull-through mirror (a failing mirror is skipped, not fatal)."""

    url: URL
    auth_name: str
    mirror: bool = False
    verify_tls: bool = True


def connection_cause(exc: BaseException) -> str:
    """Why a connection failed, in a few words (``connection refused``, ``timed out``, ``the
    name does not resolve``), without aiohttp's ``ssl:False`` and socket tuples."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS failed: {getattr(exc, 'os_error', exc)}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(
        getattr(exc, "os_error", None), socket.gaierror
    ):
        return "the name does not resolve"
    os_error = getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno:
        return os.strerror(os_error.errno).lower()  # asyncio's own text repeats the address
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    return str(exc) or type(exc).__name__


def error_text(body: bytes) -> str:
    """The registry's ``{"errors": [...]}`` as ``code: message`` text (or the raw body)."""
    try:
        doc = json.loads(body)
        parts = [
            f"{str(e.get('code', '')).lower().replace('_', ' ')}: {e.get('message', '')}".strip(
                ": "
            )
            for e in doc.get("errors", [])
            if isinstance(e, dict)
        ]
        if parts:
            return "; ".join(parts)
    except (ValueError, AttributeError):
        pass
    return body.decode("utf-8", "replace").strip()[:300]


class RegistrySession:
    """Shared state for talking to registries: one HTTP session, tokens, learned schemes.

    Open it with ``async with``. ``registry.RegistryClient`` adds ``repository()``.
    ``credentials`` maps a registry name to its credentials (e.g.
    ``DockerConfig.load().lookup``); it runs in a worker thread since helpers are programs.
    """

    def __init__(
        self,
        config: RegistryConfig | None = None,
        *,
        credentials: CredentialProvider | None = None,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config or RegistryConfig()
        self._provider = credentials
        self._session = session
        self._own_session = session is None
        self._sleep = sleep
        self.tokens = TokenCache()
        # Per base URL: the challenge its /v2/ answered with (None: no auth needed).
        self._challenges: dict[str, Challenge | None] = {}
        self._ping_locks: dict[str, asyncio.Lock] = {}
        # Per insecure host: the scheme that worked.
        self._schemes: dict[str, str] = {}
        self._creds_cache: dict[str, Credentials | None] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client made it."""
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (made on first use, inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.config.max_connections),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.config.connect_timeout,
                    sock_read=self.config.read_timeout,
                ),
                # Digests cover the bytes as stored; never let aiohttp inflate them.
                auto_decompress=False,
                headers={"User-Agent": self.config.user_agent},
            )
            self._own_session = True
        return self._session

    async def credentials_for(self, name: str) -> Credentials | None:
        """The provider's credentials for a registry name (looked up once per client)."""
        if self._provider is None:
            return None
        if name not in self._creds_cache:
            self._creds_cache[name] = await asyncio.to_thread(self._provider, name)
        return self._creds_cache[name]

    def endpoints(self, domain: str, *, push: bool = False) -> list[Endpoint]:
        """The servers to try for a registry domain, best first (mirrors only for pulls)."""
        found: list[Endpoint] = []
        if domain == DEFAULT_DOMAIN:
            if not push:
                for mirror in self.config.mirrors:
                    url = URL(mirror.rstrip("/"))
                    if url.scheme not in ("http", "https") or not url.host:
                        raise RegistryError(f"invalid registry mirror URL {mirror!r}")
                    host = url.raw_authority
                    found.append(Endpoint(url, host, True, not self.config.is_insecure(host)))
            found.append(Endpoint(URL(f"https://{DOCKER_HUB_HOST}"), DEFAULT_DOMAIN))
            return found
        scheme = "https"
        verify = True
        if self.config.is_insecure(domain):
            verify = False
            scheme = self._schemes.get(domain, "https")
        return [Endpoint(URL(f"{scheme}://{domain}"), domain, False, verify)]

    async def ping(self, endpoint: Endpoint) -> Endpoint:
        """``GET /v2/`` once per server: learn its auth challenge, and for insecure
        registries whether it speaks HTTPS. Returns the endpoint to use from now on."""
        key = str(endpoint.url)
        lock = self._ping_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key in self._challenges:
                return self._with_learned_scheme(endpoint)
            endpoint, challenge = await self._probe(endpoint)
            self._challenges[str(endpoint.url)] = challenge
            self._challenges[key] = challenge
            return endpoint

    def _with_learned_scheme(self, endpoint: Endpoint) -> Endpoint:
        host = endpoint.url.raw_authority
        scheme = self._schemes.get(host)
        if scheme and scheme != endpoint.url.scheme and not endpoint.mirror:
            return Endpoint(endpoint.url.with_scheme(scheme), endpoint.auth_name, False, False)
        return endpoint

    async def _probe(self, endpoint: Endpoint) -> tuple[Endpoint, Challenge | None]:
        host = endpoint.url.raw_authority
        if (
            not endpoint.verify_tls
            and endpoint.url.scheme == "https"
            and not endpoint.mirror
            and host not in self._schemes
        ):
            # Insecure registry: HTTPS without verification first, then plain HTTP (dockerd).
            try:
                async with self.session.get(endpoint.url / "v2/", ssl=False) as resp:
                    await resp.read()
                    self._schemes[host] = "https"
                    return endpoint, self._challenge_of(resp)
            except (TimeoutError, aiohttp.ClientError):
                self._schemes[host] = "http"
                endpoint = Endpoint(
                    endpoint.url.with_scheme("http"), endpoint.auth_name, False, False
                )
        probe = endpoint.url / "v2/"
        try:
            resp = await self.send(endpoint, "GET", probe, {}, None, auth=None)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RegistryError(
                f"cannot reach registry {host}: GET {probe}: {connection_cause(exc)}"
            ) from exc
        try:
            await resp.read()
            if resp.status not in (200, 401):
                raise RegistryError(
                    f"{endpoint.url} does not look like a registry: GET /v2/ answered {resp.status}"
                )
            return endpoint, self._challenge_of(resp)
        finally:
            resp.release()

    @staticmethod
    def _challenge_of(resp: aiohttp.ClientResponse) -> Challenge | None:
        if resp.status != 401:
            return None
        challenges = [
            c
            for h in resp.headers.getall("WWW-Authenticate", [])
            for c in parse_www_authenticate(h)
        ]
        for preferred in ("bearer", "basic"):
            for c in challenges:
                if c.scheme == preferred:
                    return c
        raise RegistryAuthError("registry requires authentication with an unsupported scheme")

    def challenge(self, endpoint: Endpoint) -> Challenge | None:
        """The auth challenge learned for ``endpoint`` (None: anonymous access works)."""
        return self._challenges.get(str(endpoint.url))

    def learn_challenge(self, endpoint: Endpoint, resp: aiohttp.ClientResponse) -> Challenge | None:
        """Record the challenge of a 401 answer (it may ask for a wider scope)."""
        challenge = self._challenge_of(resp)
        self._challenges[str(endpoint.url)] = challenge
        return challenge

    async def send(
        self,
        endpoint: Endpoint,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        data: Body,
        *,
        auth: str | None,
    ) -> aiohttp.ClientResponse:
        """One request with hand-followed redirects; ``Authorization`` only to the
        endpoint's own origin. Connection errors propagate (the caller retries)."""
        origin = (endpoint.url.scheme, endpoint.url.host, endpoint.url.port)
        for _ in range(_MAX_REDIRECTS + 1):
            same_origin = (url.scheme, url.host, url.port) == origin
            send_headers = dict(headers)
            if auth is not None and same_origin:
                send_headers["Authorization"] = auth
            resp = await self.session.request(
                method,
                url,
                headers=send_headers,
                data=data() if callable(data) else data,
                allow_redirects=False,
                ssl=endpoint.verify_tls or not same_origin,
            )
            location = resp.headers.get("Location")
            if resp.status not in _REDIRECT_STATUSES or location is None:
                return resp
            resp.release()
            url = url.join(URL(location, encoded=True))
            if resp.status == 303 or (resp.status in (301, 302) and method not in ("GET", "HEAD")):
                method, data = "GET", None
        raise RegistryError(f"too many redirects from {endpoint.url}")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt number ``attempt`` (1-based) of a retry."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.config.backoff_max)
        delay = self.config.backoff_base * float(1 << min(attempt - 1, 30))
        # A little jitter so parallel layer downloads do not retry in lockstep.
        return min(delay * (1 + random.random() * 0.1), self.config.backoff_max)

    async def pause(self, attempt: int, retry_after: float | None = None) -> None:
        """Sleep the backoff for ``attempt``."""
        await self._sleep(self.backoff(attempt, retry_after))


def retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None
