"""What declarun calls the engine objects it owns, how it marks them, and how it hashes them.

Every object declarun creates has a deterministic name and carries labels naming its stack
and resource, so that "create" is safe to repeat and nothing is adopted that declarun did not
make. The configuration a container was created from is recorded in a label as canonical JSON
(secrets replaced by salted hashes), which is what lets a plan say *which field changed from
what to what* without trusting engine-specific inspect output.

Names::

    container   <stack>-<container>          <stack>-<container>-<n> for replicas
    volume      <stack>-<volume>
    network     <stack>-<network>
    built image <stack>-<image>:latest       (only for built images without a ref)

Labels (keys are constants below)::

    dev.declarun.stack          the stack name: the ownership mark (built images carry it too)
    dev.declarun.resource       kind:name in the stack (container:web, image:app)
    dev.declarun.replica        replica number, 1-based (containers)
    dev.declarun.config-hash    sha256 of the canonical desired configuration
    dev.declarun.config         the canonical desired configuration itself (secrets masked)
    dev.declarun.input.<id>     sha256 of one input: env-file.<h>, bind.<h> (h: 12 hex of path)
    dev.declarun.profiles       the container's profiles, comma-separated, when it has some
    dev.declarun.keep           "true" on volumes declared keep: true
    dev.declarun.labels-version the version of this labelling scheme

A built image carries only ``dev.declarun.stack`` and ``dev.declarun.resource`` (and the
stack's own labels): a label that changed with every edit of the context would give every
rebuild a new image id, and the containers on it would be replaced for nothing. What an
image was built from is recorded outside it (``declarun.observe.buildcache``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, get_args

from declarun.stack.naming import built_image_tag

__all__ = [
    "LABELS_VERSION",
    "LABEL_CONFIG",
    "LABEL_CONFIG_HASH",
    "LABEL_INPUT_PREFIX",
    "LABEL_KEEP",
    "LABEL_LABELS_VERSION",
    "LABEL_PREFIX",
    "LABEL_PROFILES",
    "LABEL_REPLICA",
    "LABEL_RESOURCE",
    "LABEL_STACK",
    "MASK",
    "ResourceKind",
    "built_image_tag",
    "canonical_json",
    "config_hash",
    "container_name",
    "input_label",
    "is_masked",
    "is_secret_key",
    "mask_secret",
    "network_name",
    "ownership_labels",
    "parse_resource",
    "resource_label",
    "sha256_text",
    "volume_name",
]

ResourceKind = Literal["image", "volume", "network", "container", "service", "config", "secret"]
_RESOURCE_KINDS = frozenset(get_args(ResourceKind))

LABEL_PREFIX = "dev.declarun."
LABEL_STACK = "dev.declarun.stack"
LABEL_RESOURCE = "dev.declarun.resource"
LABEL_REPLICA = "dev.declarun.replica"
LABEL_CONFIG_HASH = "dev.declarun.config-hash"
LABEL_CONFIG = "dev.declarun.config"
LABEL_INPUT_PREFIX = "dev.declarun.input."
LABEL_PROFILES = "dev.declarun.profiles"
LABEL_KEEP = "dev.declarun.keep"
LABEL_LABELS_VERSION = "dev.declarun.labels-version"
LABELS_VERSION = "1"

#: What a masked secret starts with, in plans, labels and rendered output.
MASK = "***"

# Over-matching is the safe direction: a masked harmless value costs nothing.
_SECRET_KEY = re.compile(
    r"PASSWORD|PASSWD|PASSPHRASE|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE|AUTH|CERT|SALT|SIGNATURE",
    re.IGNORECASE,
)
_MASKED = re.compile(r"^\*\*\* \(sha256:[0-9a-f]{16}\)$")


def container_name(stack: str, replica: str) -> str:
    """The engine name of a container replica (``replica`` from ``replica_names``)."""
    return f"{stack}-{replica}"


def volume_name(stack: str, volume: str) -> str:
    """The engine name of a named volume."""
    return f"{stack}-{volume}"


def network_name(stack: str, network: str) -> str:
    """The engine name of a network."""
    return f"{stack}-{network}"


def resource_label(kind: ResourceKind, name: str) -> str:
    """The value of ``dev.declarun.resource``: ``container:web``."""
    return f"{kind}:{name}"


def parse_resource(value: str | None) -> tuple[str, str] | None:
    """Split a ``dev.declarun.resource`` value into (kind, name); None when malformed."""
    if not value or ":" not in value:
        return None
    kind, _, name = value.partition(":")
    if kind not in _RESOURCE_KINDS or not name:
        return None
    return kind, name


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal data gives equal text, on every run and machine."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    """``sha256:<hex>`` of UTF-8 text."""
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(config: Any) -> str:
    """The hash of a (masked, JSON-able) configuration: ``sha256:<hex>`` of its canonical form."""
    return sha256_text(canonical_json(config))


def is_secret_key(key: str) -> bool:
    """True when an environment variable's name suggests a secret (PASSWORD, TOKEN, KEY, ...)."""
    return _SECRET_KEY.search(key) is not None


def mask_secret(key: str, value: str) -> str:
    """A secret's stand-in: ``*** (sha256:<16 hex>)``.

    The hash is salted with the variable name and a fixed tag, so equal values under different
    names do not look alike and published rainbow tables do not apply; it tells a reviewer
    *that* a secret changed, never what it is.
    """
    digest = hashlib.sha256(f"declarun-secret\0{key}\0{value}".encode()).hexdigest()
    return f"{MASK} (sha256:{digest[:16]})"


def is_masked(value: object) -> bool:
    """True for a value produced by :func:`mask_secret`."""
    return isinstance(value, str) and _MASKED.match(value) is not None


def input_label(kind: Literal["env-file", "bind"], path: str) -> str:
    """The label key recording the digest of one input file or directory.

    The key is derived from the path (not its position) so reordering inputs changes nothing.
    """
    short = hashlib.sha256(path.encode("utf-8")).hexdigest()[:12]
    return f"{LABEL_INPUT_PREFIX}{kind}.{short}"


def ownership_labels(
    stack: str,
    kind: ResourceKind,
    name: str,
    config: Any,
    *,
    replica: int | None = None,
) -> dict[str, str]:
    """The labels that mark an object as owned by ``stack`` and record its configuration."""
    canonical = canonical_json(config)
    labels = {
        LABEL_STACK: stack,
        LABEL_RESOURCE: resource_label(kind, name),
        LABEL_CONFIG_HASH: sha256_text(canonical),
        LABEL_CONFIG: canonical,
        LABEL_LABELS_VERSION: LABELS_VERSION,
    }
    if replica is not None:
        labels[LABEL_REPLICA] = str(replica)
    return labels
