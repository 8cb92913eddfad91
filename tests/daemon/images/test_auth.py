"""Registry authentication: challenges, credential sources, and the bearer-token flow."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from declarun.daemon.images.auth import (
    Challenge,
    Credentials,
    DockerConfig,
    InvalidRegistryAuthError,
    RegistryAuthError,
    TokenCache,
    decode_registry_auth,
    encode_registry_auth,
    parse_www_authenticate,
)
from declarun.daemon.images.registry import RegistryClient, RegistryConfig
from tests.support.loopback import serve_app

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# -- WWW-Authenticate ------------------------------------------------------------------

CHALLENGES = [
    (
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
        'scope="repository:library/busybox:pull"',
        [
            Challenge(
                "bearer",
                {
                    "realm": "https://auth.docker.io/token",
                    "service": "registry.docker.io",
                    "scope": "repository:library/busybox:pull",
                },
            )
        ],
    ),
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    # Quoted commas and escapes, spaces around "=", unquoted tokens, upper-case names.
    (
        'Bearer Realm = "https://a/t?x=1,2", service=reg, scope="repository:a:pull,push" , '
        'error="insufficient_scope", note="say \\"hi\\""',
        [
            Challenge(
                "bearer",
                {
                    "realm": "https://a/t?x=1,2",
                    "service": "reg",
                    "scope": "repository:a:pull,push",
                    "error": "insufficient_scope",
                    "note": 'say "hi"',
                },
            )
        ],
    ),
    (
        'Basic realm="a", Bearer realm="https://t", service="s"',
        [
            Challenge("basic", {"realm": "a"}),
            Challenge("bearer", {"realm": "https://t", "service": "s"}),
        ],
    ),
    ("Negotiate abc123==", [Challenge("negotiate", {}, "abc123==")]),
    ("Basic", [Challenge("basic", {})]),
    ("", []),
]


@pytest.mark.parametrize(("header", "expected"), CHALLENGES)
def test_www_authenticate_parsing(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_unterminated_quote_is_an_error() -> None:
    with pytest.raises(Exception, match="unterminated"):
        parse_www_authenticate('Bearer realm="https://x')


# -- X-Registry-Auth -----------------------------------------------------------------------


def _b64url(doc: dict[str, str], *, pad: bool = True) -> str:
    text = base64.urlsafe_b64encode(json.dumps(doc).encode()).decode()
    return text if pad else text.rstrip("=")


def test_registry_auth_header_decoding() -> None:
    assert decode_registry_auth(None) is None
    assert decode_registry_auth("") is None
    assert decode_registry_auth(_b64url({})) is None
    creds = decode_registry_auth(
        _b64url({"username": "u", "password": "p?>>", "serveraddress": "x"})
    )
    assert creds == Credentials("u", "p?>>")
    # Unpadded (as some clients send) and with an identity token.
    assert decode_registry_auth(_b64url({"identitytoken": "tok"}, pad=False)) == Credentials(
        identity_token="tok"
    )
    assert decode_registry_auth(_b64url({"registrytoken": "rt"})) == Credentials(
        registry_token="rt"
    )
    assert decode_registry_auth(_b64url({"auth": base64.b64encode(b"a:b:c").decode()})) == (
        Credentials("a", "b:c")
    )
    round_trip = Credentials("me", "secret", identity_token="id")
    assert decode_registry_auth(encode_registry_auth(round_trip)) == round_trip
    for bad in ("not base64 !!", base64.urlsafe_b64encode(b"[1, 2]").decode()):
        with pytest.raises(InvalidRegistryAuthError, match="X-Registry-Auth"):
            decode_registry_auth(bad)


def test_credentials_do_not_show_secrets() -> None:
    assert "secret" not in repr(Credentials("me", "secret", "idtok", "regtok"))


# -- ~/.docker/config.json ----------------------------------------------------------------------


def _helper(directory: Path, name: str, answers: dict[str, tuple[str, str]]) -> None:
    """A real docker-credential-<name> program answering ``get`` from a table."""
    table = json.dumps(
        {k: {"ServerURL": k, "Username": u, "Secret": s} for k, (u, s) in answers.items()}
    )
    script = directory / f"docker-credential-{name}"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"table = json.loads({table!r})\n"
        "assert sys.argv[1] == 'get'\n"
        "url = sys.stdin.read().strip()\n"
        "if url not in table:\n"
        "    print('credentials not found in native keychain'); sys.exit(1)\n"
        "print(json.dumps(table[url]))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_docker_config_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _helper(bin_dir, "team", {"ghcr.example": ("bot", "helper-secret")})
    _helper(bin_dir, "store", {"https://index.docker.io/v1/": ("<token>", "refresh-me")})
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    "https://index.docker.io/v1/": {},
                    "127.0.0.1:5000": {"auth": base64.b64encode(b"alice:pw:with:colons").decode()},
                    "http://reg.lan:5001/v2/": {"username": "bob", "password": "bobpw"},
                },
                "credsStore": "store",
                "credHelpers": {"ghcr.example": "team"},
            }
        )
    )
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    config = DockerConfig.load()
    assert config.lookup("ghcr.example") == Credentials("bot", "helper-secret")
    assert config.lookup("docker.io") == Credentials(identity_token="refresh-me")
    # The store has nothing for these: the file's own entries are used.
    assert config.lookup("127.0.0.1:5000") == Credentials("alice", "pw:with:colons")
    assert config.lookup("reg.lan:5001") == Credentials("bob", "bobpw")
    assert config.lookup("unknown.example") is None


def test_missing_and_broken_docker_config(tmp_path: Path) -> None:
    assert DockerConfig.load(tmp_path / "absent.json").lookup("docker.io") is None
    broken = tmp_path / "config.json"
    broken.write_text("{not json")
    with pytest.raises(Exception, match="cannot read docker config"):
        DockerConfig.load(broken)
    helperless = DockerConfig(cred_helpers={"x.example": "does-not-exist-anywhere"})
    with pytest.raises(RegistryAuthError, match="not installed"):
        helperless.lookup("x.example")


# -- bearer tokens, against a loopback registry + token service ------------------------------


class TokenWorld:
    """A registry that wants bearer tokens, and its token service, on loopback."""

    def __init__(self, lifetime: int = 300) -> None:
        self.lifetime = lifetime
        self.token_requests: list[dict[str, Any]] = []
        self.issued = 0
        self.realm = ""
        self.users = {"alice": "wonderland"}

    def app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/v2/", self.registry),
                web.get("/v2/{repo:.+}/manifests/{ref}", self.registry),
                web.get("/token", self.token),
                web.post("/token", self.token),
            ]
        )
        return app

    def _challenge(self, scope: str | None) -> str:
        header = f'Bearer realm="{self.realm}",service="test-registry"'
        return header + (f',scope="{scope}"' if scope else "")

    async def registry(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        repo = request.match_info.get("repo")
        scope = f"repository:{repo}:pull" if repo else None
        granted = auth.removeprefix("Bearer ").split("|")
        if not auth.startswith("Bearer ") or (scope and scope not in granted):
            return web.Response(status=401, headers={"WWW-Authenticate": self._challenge(scope)})
        if repo is None:
            return web.Response(status=200)
        body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
        return web.Response(body=body, content_type="application/vnd.oci.image.index.v1+json")

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post()) if request.method == "POST" else {}
        record: dict[str, Any] = {
            "method": request.method,
            "service": request.query.get("service") or form.get("service"),
            "scopes": request.query.getall("scope", []) or str(form.get("scope", "")).split(),
            "authorization": request.headers.get("Authorization"),
            "form": form,
        }
        self.token_requests.append(record)
        basic = record["authorization"]
        if basic:
            user, _, password = base64.b64decode(basic.split()[1]).decode().partition(":")
            if self.users.get(user) != password:
                return web.json_response({"details": "incorrect username or password"}, status=401)
        if request.method == "POST" and form.get("refresh_token") != "good-refresh":
            return web.json_response({"error": "invalid_grant"}, status=401)
        self.issued += 1
        # The token lists the scopes it grants, so the registry can check them.
        token = "|".join([f"t{self.issued}", *record["scopes"]])
        key = "access_token" if request.method == "POST" else "token"
        return web.json_response({key: token, "expires_in": self.lifetime})


def test_anonymous_bearer_token_is_fetched_once_and_reused() -> None:
    world = TokenWorld()

    async def main() -> None:
        async with serve_app(world.app()) as url:
            world.realm = f"{url}/token"
            async with RegistryClient(RegistryConfig()) as client:
                repo = client.repository(f"{url.removeprefix('http://')}/library/busybox")
                for _ in range(3):
                    manifest = await repo.get_manifest("latest")
                    assert manifest.is_index
                # Parallel requests share one token request.
                await asyncio.gather(*(repo.get_manifest("latest") for _ in range(5)))

    run(main())
    assert len(world.token_requests) == 1
    request = world.token_requests[0]
    assert request["service"] == "test-registry"
    assert request["scopes"] == ["repository:library/busybox:pull"]
    assert request["authorization"] is None


def test_bearer_token_with_credentials_and_wrong_credentials() -> None:
    world = TokenWorld()

    async def main() -> None:
        async with serve_app(world.app()) as url:
            world.realm = f"{url}/token"
            domain = url.removeprefix("http://")
            good = Credentials("alice", "wonderland")
            async with RegistryClient(RegistryConfig(), credentials=lambda name: good) as client:
                assert (await client.repository(f"{domain}/x").get_manifest("t")).is_index
            async with RegistryClient(RegistryConfig()) as client:
                repo = client.repository(f"{domain}/x", credentials=Credentials("alice", "nope"))
                with pytest.raises(RegistryAuthError, match="incorrect username or password"):
                    await repo.get_manifest("t")

    run(main())
    assert world.token_requests[0]["authorization"].startswith("Basic ")


def test_identity_token_uses_the_oauth2_refresh_grant() -> None:
    world = TokenWorld()

    async def main() -> None:
        async with serve_app(world.app()) as url:
            world.realm = f"{url}/token"
            creds = Credentials(identity_token="good-refresh")
            async with RegistryClient(RegistryConfig()) as client:
                repo = client.repository(f"{url.removeprefix('http://')}/x", credentials=creds)
                assert (await repo.get_manifest("t")).is_index

    run(main())
    request = world.token_requests[0]
    assert request["method"] == "POST"
    assert request["form"]["grant_type"] == "refresh_token"
    assert request["scopes"] == ["repository:x:pull"]


def test_token_is_renewed_after_it_expires() -> None:
    world = TokenWorld(lifetime=120)
    now = [1000.0]

    async def main() -> None:
        async with serve_app(world.app()) as url:
            world.realm = f"{url}/token"
            async with RegistryClient(RegistryConfig()) as client:
                client.tokens = TokenCache(clock=lambda: now[0])
                repo = client.repository(f"{url.removeprefix('http://')}/x")
                await repo.get_manifest("t")
                now[0] += 100  # still valid
                await repo.get_manifest("t")
                assert len(world.token_requests) == 1
                now[0] += 30  # past expires_in
                await repo.get_manifest("t")
                assert len(world.token_requests) == 2

    run(main())


def test_short_lived_tokens_count_as_sixty_seconds() -> None:
    world = TokenWorld(lifetime=1)
    now = [0.0]

    async def main() -> None:
        async with serve_app(world.app()) as url:
            world.realm = f"{url}/token"
            async with RegistryClient(RegistryConfig()) as client:
                client.tokens = TokenCache(clock=lambda: now[0])
                repo = client.repository(f"{url.removeprefix('http://')}/x")
                await repo.get_manifest("t")
                now[0] += 30
                await repo.get_manifest("t")

    run(main())
    assert len(world.token_requests) == 1
