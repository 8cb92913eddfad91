"""Registry credentials and the authentication schemes of the distribution spec.

* ``parse_www_authenticate`` reads RFC 7235 challenges (several per header, auth-params
  with quoted strings and backslash escapes, token68).
* ``Credentials`` come from ``~/.docker/config.json`` (``DockerConfig``: ``auths`` with
  base64 ``auth``, ``credHelpers`` and ``credsStore`` through ``docker-credential-<name>
  get``) or from the ``X-Registry-Auth`` header of an API call (``decode_registry_auth``).
* ``TokenCache`` fetches bearer tokens from the challenge's realm (anonymously, with
  Basic credentials, or with an OAuth2 refresh token) and reuses each, per realm,
  service, scope set and identity, until ``expires_in`` runs out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from declarun.errdefs import InvalidArgument, Unauthorized
from declarun.errors import DaemonError, RegistryError

__all__ = [
    "Challenge",
    "CredentialProvider",
    "Credentials",
    "DockerConfig",
    "InvalidRegistryAuthError",
    "RegistryAuthError",
    "TokenCache",
    "basic_authorization",
    "credentials_for",
    "decode_registry_auth",
    "decode_registry_config",
    "encode_registry_auth",
    "parse_www_authenticate",
]

# The key docker login writes for Docker Hub, and the other names Hub is known by.
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# The spec says a token without expires_in lasts 60 s, and none lasts less.
_MIN_TOKEN_LIFETIME = 60.0
# Renew a little early so a token does not expire between our check and the registry's.
_EXPIRY_MARGIN = 5.0
_HELPER_TIMEOUT = 30.0


class RegistryAuthError(RegistryError, Unauthorized):
    """The registry (or its token service) refused our credentials, or wants some."""


class InvalidRegistryAuthError(DaemonError, InvalidArgument):
    """An ``X-Registry-Auth`` header value is not base64url-encoded JSON."""


@dataclass(frozen=True)
class Credentials:
    """What we may present to one registry.

    ``identity_token`` is an OAuth2 refresh token (``docker login`` to a token server);
    ``registry_token`` is a bearer token used as is.
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)
    registry_token: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.username or self.password or self.identity_token or self.registry_token)


# Maps a registry domain (``docker.io``, ``127.0.0.1:5000``) to its credentials.
CredentialProvider = Callable[[str], "Credentials | None"]


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: a lowercase scheme and its params."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None

    @property
    def realm(self) -> str | None:
        """The ``realm`` parameter (for Bearer: the token service URL)."""
        return self.params.get("realm")


_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class _Scanner:
    """A cursor over a header value, with the RFC 7230 token and quoted-string rules."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def skip_ws_and_commas(self) -> None:
        while self.peek() in (" ", "\t", ",") and not self.at_end():
            self.pos += 1

    def token(self) -> str:
        start = self.pos
        while not self.at_end() and self.text[self.pos] in _TCHAR:
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        # Caller saw the opening quote.
        self.pos += 1
        out: list[str] = []
        while not self.at_end():
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and not self.at_end():
                out.append(self.text[self.pos])
                self.pos += 1
            elif ch == '"':
                return "".join(out)
            else:
                out.append(ch)
        raise RegistryError(f"unterminated quoted string in WWW-Authenticate: {self.text!r}")

    def looks_like_param(self) -> bool:
        """True when a ``name =`` follows (so the next token is a param, not a new scheme)."""
        saved = self.pos
        try:
            self.skip_ws()
            if not self.token():
                return False
            self.skip_ws()
            if self.peek() != "=":
                return False
            self.pos += 1
            self.skip_ws()
            # token68 ends in "=" padding ("abc123=="); a param has a value after its "=".
            return self.peek() not in ("=", ",", "")
        finally:
            self.pos = saved


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Parse a ``WWW-Authenticate`` value into its challenges (RFC 7235 section 4.1).

    ``Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`` gives one
    ``Challenge("bearer", {...})``; ``Basic realm="x", Bearer realm="y"`` gives two.
    Parameter names are case-insensitive and returned lowercase. Raises ``RegistryError``
    on a malformed header.
    """
    scanner = _Scanner(header)
    challenges: list[Challenge] = []
    while True:
        scanner.skip_ws_and_commas()
        if scanner.at_end():
            return challenges
        scheme = scanner.token()
        if not scheme:
            raise RegistryError(f"malformed WWW-Authenticate header: {header!r}")
        params: dict[str, str] = {}
        token68: str | None = None
        scanner.skip_ws()
        if scanner.looks_like_param():
            while True:
                scanner.skip_ws()
                name = scanner.token().lower()
                scanner.skip_ws()
                scanner.pos += 1  # the "=" looks_like_param saw
                scanner.skip_ws()
                value = scanner.quoted() if scanner.peek() == '"' else scanner.token()
                params[name] = value
                scanner.skip_ws()
                if scanner.peek() != ",":
                    break
                # A comma ends this param; another param or a new challenge follows.
                scanner.skip_ws_and_commas()
                if not scanner.looks_like_param():
                    break
        elif not scanner.at_end() and scanner.peek() != ",":
            start = scanner.pos
            while not scanner.at_end() and scanner.peek() not in (" ", "\t", ","):
                scanner.pos += 1
            token68 = header[start : scanner.pos]
        challenges.append(Challenge(scheme.lower(), params, token68))


def basic_authorization(credentials: Credentials) -> str:
    """The ``Authorization`` value for HTTP Basic with these credentials."""
    raw = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _b64decode_any(text: str) -> bytes:
    """Decode base64 in either alphabet, with or without padding (clients differ)."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    if "-" in padded or "_" in padded:
        return base64.urlsafe_b64decode(padded)
    return base64.b64decode(padded, validate=True)


def _from_auth_field(auth: str, where: str) -> tuple[str, str]:
    try:
        username, sep, password = _b64decode_any(auth).decode("utf-8").partition(":")
    except (binascii.Error, ValueError) as exc:
        raise InvalidRegistryAuthError(f"invalid base64 'auth' value in {where}") from exc
    if not sep:
        raise InvalidRegistryAuthError(f"'auth' value in {where} is not username:password")
    return username, password


def decode_registry_auth(header: str | None) -> Credentials | None:
    """Decode a Docker ``X-Registry-Auth`` header value (base64url JSON ``AuthConfig``).

    Returns None for an absent or empty value (Docker treats that as anonymous). Accepts
    ``username``/``password``, ``auth`` (base64 ``user:pass``), ``identitytoken`` and
    ``registrytoken``. Raises ``InvalidRegistryAuthError`` when it is not valid JSON.
    """
    if header is None or not header.strip():
        return None
    try:
        doc = json.loads(_b64decode_any(header).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidRegistryAuthError(f"invalid X-Registry-Auth header: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidRegistryAuthError("invalid X-Registry-Auth header: not a JSON object")
    return _auth_config(doc, "X-Registry-Auth")


def _auth_config(doc: Mapping[str, Any], where: str) -> Credentials | None:
    """Credentials from one ``AuthConfig`` object (None when it holds none)."""
    lowered = {str(k).lower(): v for k, v in doc.items()}

    def text(key: str) -> str:
        value = lowered.get(key)
        return value if isinstance(value, str) else ""

    username, password = text("username"), text("password")
    if not username and not password and text("auth"):
        username, password = _from_auth_field(text("auth"), where)
    creds = Credentials(username, password, text("identitytoken"), text("registrytoken"))
    return creds or None


def decode_registry_config(header: str | None) -> dict[str, Credentials]:
    """Decode ``X-Registry-Config`` (``docker build``): base64 JSON ``{registry: AuthConfig}``.

    Keys are kept as sent (``https://index.docker.io/v1/``, ``host:5000``); find the ones
    for a registry with :func:`credentials_for`. InvalidRegistryAuthError when malformed.
    """
    if header is None or not header.strip():
        return {}
    try:
        doc = json.loads(_b64decode_any(header).decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidRegistryAuthError(f"invalid X-Registry-Config header: {exc}") from exc
    if not isinstance(doc, dict):
        raise InvalidRegistryAuthError("invalid X-Registry-Config header: not a JSON object")
    out: dict[str, Credentials] = {}
    for key, value in doc.items():
        if not isinstance(value, dict):
            raise InvalidRegistryAuthError(
                f"invalid X-Registry-Config header: the entry for {key!r} is not an object"
            )
        creds = _auth_config(value, "X-Registry-Config")
        if creds is not None:
            out[str(key)] = creds
    return out


def credentials_for(configs: Mapping[str, Credentials], domain: str) -> Credentials | None:
    """The credentials of ``configs`` (by registry key) that belong to registry ``domain``."""
    for key, creds in configs.items():
        if _same_registry(key, domain):
            return creds
    return None


def encode_registry_auth(credentials: Credentials, server_address: str = "") -> str:
    """The ``X-Registry-Auth`` value a Docker client sends for these credentials."""
    doc: dict[str, str] = {"username": credentials.username, "password": credentials.password}
    if credentials.identity_token:
        doc["identitytoken"] = credentials.identity_token
    if credentials.registry_token:
        doc["registrytoken"] = credentials.registry_token
    if server_address:
        doc["serveraddress"] = server_address
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode("ascii")


def _config_key_host(key: str) -> str:
    """``https://index.docker.io/v1/`` -> ``index.docker.io``; ``host:5000`` stays."""
    host = key.split("://", 1)[1] if "://" in key else key
    return host.split("/", 1)[0].lower()


def _same_registry(key: str, domain: str) -> bool:
    host, wanted = _config_key_host(key), domain.lower()
    if wanted in _HUB_NAMES:
        return host in _HUB_NAMES
    return host == wanted


@dataclass
class DockerConfig:
    """The credential parts of a docker CLI ``config.json``.

    ``helper_runner`` runs ``docker-credential-<name> get`` (replaceable in unit tests of
    the lookup order; the default runs the real program found on PATH).
    """

    auths: dict[str, dict[str, Any]] = field(default_factory=dict)
    creds_store: str | None = None
    cred_helpers: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def default_path(cls) -> Path:
        """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
        base = os.environ.get("DOCKER_CONFIG")
        return Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"

    @classmethod
    def load(cls, path: Path | None = None) -> DockerConfig:
        """Read a config file; a missing file is an empty config, a broken one an error."""
        path = path or cls.default_path()
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path=path)
        except (OSError, ValueError) as exc:
            raise RegistryError(f"cannot read docker config {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise RegistryError(f"docker config {path} is not a JSON object")
        auths = doc.get("auths") if isinstance(doc.get("auths"), dict) else {}
        helpers = doc.get("credHelpers") if isinstance(doc.get("credHelpers"), dict) else {}
        store = doc.get("credsStore")
        return cls(
            auths={str(k): v for k, v in (auths or {}).items() if isinstance(v, dict)},
            creds_store=store if isinstance(store, str) and store else None,
            cred_helpers={str(k): str(v) for k, v in (helpers or {}).items() if v},
            path=path,
        )

    def lookup(self, domain: str) -> Credentials | None:
        """Credentials for a registry domain, or None for anonymous access.

        Order as in the docker CLI: a ``credHelpers`` entry for the registry, then the
        ``credsStore``, then a plain ``auths`` entry. This may run a helper program, so
        call it from a thread in async code (``asyncio.to_thread``).
        """
        for key, helper in self.cred_helpers.items():
            if _same_registry(key, domain):
                return run_credential_helper(helper, self._server_url(domain, key))
        if self.creds_store:
            found = run_credential_helper(self.creds_store, self._server_url(domain))
            if found:
                return found
        for key, entry in self.auths.items():
            if _same_registry(key, domain):
                return self._from_entry(entry, key)
        return None

    def _server_url(self, domain: str, key: str | None = None) -> str:
        if key is not None:
            return key
        for known in self.auths:
            if _same_registry(known, domain):
                return known
        return DOCKER_HUB_CONFIG_KEY if domain.lower() in _HUB_NAMES else domain

    def _from_entry(self, entry: Mapping[str, Any], key: str) -> Credentials | None:
        where = f"{self.path or 'docker config'} (auths[{key!r}])"
        username = entry.get("username") if isinstance(entry.get("username"), str) else ""
        password = entry.get("password") if isinstance(entry.get("password"), str) else ""
        auth = entry.get("auth")
        if isinstance(auth, str) and auth:
            username, password = _from_auth_field(auth, where)
        identity = entry.get("identitytoken")
        registry_token = entry.get("registrytoken")
        creds = Credentials(
            str(username or ""),
            str(password or ""),
            identity if isinstance(identity, str) else "",
            registry_token if isinstance(registry_token, str) else "",
        )
        return creds or None


def run_credential_helper(name: str, server_url: str) -> Credentials | None:
    """Ask ``docker-credential-<name> get`` for ``server_url``; None when it has nothing.

    A helper answers ``{"ServerURL", "Username", "Secret"}``; the username ``<token>``
    marks the secret as an identity token, as in the docker CLI.
    """
    program = f"docker-credential-{name}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=server_url.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RegistryAuthError(
            f"credential helper {program} is configured but not installed"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise RegistryAuthError(f"credential helper {program} did not answer") from exc
    out = done.stdout.decode("utf-8", "replace").strip()
    if done.returncode != 0:
        if (
            "credentials not found" in out.lower()
            or "credentials not found" in done.stderr.decode("utf-8", "replace").lower()
        ):
            return None
        message = out or done.stderr.decode("utf-8", "replace").strip()
        raise RegistryAuthError(f"credential helper {program} failed: {message}")
    try:
        doc = json.loads(out)
    except ValueError as exc:
        raise RegistryAuthError(f"credential helper {program} gave invalid JSON") from exc
    username, secret = str(doc.get("Username", "")), str(doc.get("Secret", ""))
    if username == "<token>":
        return Credentials(identity_token=secret) or None
    return Credentials(username, secret) or None


@dataclass
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Bearer tokens per (realm, service, scopes, identity), reused until they expire.

    One lock per key makes concurrent layer downloads share one token request.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens: dict[tuple[str, str, tuple[str, ...], str], _Token] = {}
        self._locks: dict[tuple[str, str, tuple[str, ...], str], asyncio.Lock] = {}
        self._clock = clock

    def invalidate(
        self, challenge: Challenge, scopes: Iterable[str], creds: Credentials | None
    ) -> None:
        """Forget the token for this key (after a registry refused it)."""
        self._tokens.pop(self._key(challenge, scopes, creds), None)

    @staticmethod
    def _key(
        challenge: Challenge, scopes: Iterable[str], creds: Credentials | None
    ) -> tuple[str, str, tuple[str, ...], str]:
        who = ""
        if creds:
            who = creds.username or ("identity:" + creds.identity_token[:8])
        return (
            challenge.params.get("realm", ""),
            challenge.params.get("service", ""),
            tuple(sorted(set(scopes))),
            who,
        )

    async def token(
        self,
        session: aiohttp.ClientSession,
        challenge: Challenge,
        scopes: Iterable[str],
        creds: Credentials | None,
        ssl: bool = True,
    ) -> str:
        """A valid bearer token for ``scopes``, from the cache or from the token service."""
        if creds is not None and creds.registry_token:
            return creds.registry_token
        key = self._key(challenge, scopes, creds)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached.expires_at > self._clock():
                return cached.value
            for attempt in range(_TOKEN_RETRIES + 1):
                try:
                    value, lifetime = await _fetch_token(session, challenge, key[2], creds, ssl)
                    break
                except _TransientTokenError:
                    if attempt == _TOKEN_RETRIES:
                        raise
                    # A token service that hiccups (5xx, 429, a dropped connection) gets
                    # the back-off registries get.
                    await asyncio.sleep(_TOKEN_BACKOFF * (1 << attempt))
            self._tokens[key] = _Token(value, self._clock() + lifetime - _EXPIRY_MARGIN)
            return value


class _TransientTokenError(RegistryError):
    """The token service failed in a way worth another try (5xx, 429, no connection)."""


_TOKEN_RETRIES = 3
_TOKEN_BACKOFF = 0.25


async def _fetch_token(
    session: aiohttp.ClientSession,
    challenge: Challenge,
    scopes: tuple[str, ...],
    creds: Credentials | None,
    ssl: bool,
) -> tuple[str, float]:
    realm = challenge.params.get("realm")
    if not realm or not realm.startswith(("https://", "http://")):
        raise RegistryAuthError(
            f"registry sent a bearer challenge without a usable realm: {realm!r}"
        )
    service = challenge.params.get("service", "")
    headers: dict[str, str] = {}
    try:
        if creds is not None and creds.identity_token:
            # OAuth2 refresh-token grant, as docker login with an identity token does.
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "service": service,
                "client_id": "declarun",
                "access_type": "offline",
            }
            if scopes:
                form["scope"] = " ".join(scopes)
            request = session.post(realm, data=form, ssl=ssl)
        else:
            query: list[tuple[str, str]] = []
            if service:
                query.append(("service", service))
            query.extend(("scope", s) for s in scopes)
            if creds is not None and (creds.username or creds.password):
                headers["Authorization"] = basic_authorization(creds)
                query.append(("account", creds.username))
            request = session.get(realm, params=query, headers=headers, ssl=ssl)
        async with request as resp:
            body = await resp.read()
            if resp.status in (401, 403):
                raise RegistryAuthError(
                    f"authentication failed at token service {realm}: {_short(body) or resp.reason}"
                )
            if resp.status != 200:
                transient = resp.status == 429 or (resp.status >= 500 and resp.status != 501)
                raise (_TransientTokenError if transient else RegistryError)(
                    f"token service {realm} answered {resp.status}: {_short(body) or resp.reason}"
                )
    except aiohttp.ClientError as exc:
        raise _TransientTokenError(f"cannot reach token service {realm}: {exc}") from exc
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise RegistryError(f"token service {realm} answered with invalid JSON") from exc
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
    if not isinstance(token, str) or not token:
        raise RegistryError(f"token service {realm} answered without a token")
    expires = doc.get("expires_in")
    lifetime = float(expires) if isinstance(expires, int | float) else _MIN_TOKEN_LIFETIME
    return token, max(lifetime, _MIN_TOKEN_LIFETIME)


def _short(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    return text[:300]
