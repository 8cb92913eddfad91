"""What plain YAML scalars mean in a Compose file: YAML 1.2's core schema, as docker compose
(Go's yaml.v3) reads them, rather than the YAML 1.1 rules stack files follow.

The difference people meet: in YAML 1.1 ``restart: no``, ``DEBUG: yes`` and ``on: off`` are
booleans; in a Compose file they are the words ``no``, ``yes``, ``on`` and ``off``. Only
``true``/``false`` (any of three capitalisations) are booleans, ``~``/``null``/empty are null,
and numbers are decimal, ``0o`` octal or ``0x`` hexadecimal integers, or floats.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["CoreSchemaResolver"]


class CoreSchemaResolver(yaml.resolver.BaseResolver):
    """A PyYAML resolver with the YAML 1.2 core schema's implicit types."""


CoreSchemaResolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
CoreSchemaResolver.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
CoreSchemaResolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
CoreSchemaResolver.add_implicit_resolver(
    "tag:yaml.org,2002:null",
    re.compile(r"^(?:~|null|Null|NULL|)$"),
    ["~", "n", "N", ""],
)
