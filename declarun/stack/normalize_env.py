"""Resolve a container's environment: ``env_file`` contents first, then ``env:``, later wins.

``env:`` is a map (a value may be a scalar, null = empty, or ``{value, secret}``) or a list of
``KEY=VALUE``. Env files are read here, so their digest can be recorded for change detection.
Env file syntax: ``KEY=VALUE`` lines, optional ``export`` prefix, ``#`` comment lines, blank
lines; a value wholly wrapped in matching single or double quotes loses them (no escapes).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Mapping
from typing import Any

from declarun.errors import SourceLocation
from declarun.frozen import FrozenDict
from declarun.stack.model import EnvFile, EnvValue
from declarun.stack.normalize_common import FieldPath, Normalizer, scalar_text

__all__ = ["MAX_ENV_FILE_SIZE", "normalize_env", "parse_env_file"]

#: Env files larger than this are refused: they are surely not env files.
MAX_ENV_FILE_SIZE = 1024 * 1024


def parse_env_file(text: str) -> tuple[dict[str, tuple[str, int]], list[tuple[int, str]]]:
    """Parse env file text into ``{key: (value, line)}`` and a list of ``(line, problem)``."""
    values: dict[str, tuple[str, int]] = {}
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export ") or line.startswith("export\t"):
            line = line[len("export") :].lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not key or any(c.isspace() for c in key):
            errors.append((number, f"expected KEY=VALUE, got {raw.strip()!r}"))
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key] = (value, number)
    return values, errors


def _read_env_file(
    ctx: Normalizer, entry: Any, path: FieldPath, env: dict[str, EnvValue]
) -> EnvFile | None:
    if isinstance(entry, Mapping):
        text_path, secret = str(entry.get("path", "")), bool(entry.get("secret", False))
    else:
        text_path, secret = str(entry), False
    file = ctx.resolve_path(text_path)
    try:
        # A FIFO or a device would block or never end: only regular files are env files.
        if not stat.S_ISREG(os.stat(file).st_mode):
            ctx.problem(path, f"env file {str(file)!r} is not a regular file")
            return None
        with open(file, "rb") as handle:
            data = handle.read(MAX_ENV_FILE_SIZE + 1)
    except OSError as exc:
        ctx.problem(path, f"cannot read env file {str(file)!r}: {exc.strerror or exc}")
        return None
    except ValueError as exc:  # e.g. a NUL byte in the path
        ctx.problem(path, f"cannot read env file {str(file)!r}: {exc}")
        return None
    if len(data) > MAX_ENV_FILE_SIZE:
        ctx.problem(path, f"env file {str(file)!r} is larger than {MAX_ENV_FILE_SIZE} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.problem(path, f"env file {str(file)!r} is not UTF-8 text (byte {exc.start})")
        return None
    values, errors = parse_env_file(text)
    for line, message in errors:
        ctx.problem(path, message, location=SourceLocation(str(file), line, 1))
    for key, (value, line) in values.items():
        env[key] = EnvValue(value=value, secret=secret, location=SourceLocation(str(file), line, 1))
    return EnvFile(
        path=file,
        sha256=hashlib.sha256(data).hexdigest(),
        secret=secret,
        location=ctx.locate(path),
    )


def _env_value(ctx: Normalizer, value: Any, path: FieldPath) -> EnvValue:
    location = ctx.locate(path)
    if isinstance(value, Mapping):
        return EnvValue(
            value=scalar_text(value.get("value")),
            secret=bool(value.get("secret", False)),
            location=location,
        )
    return EnvValue(value=scalar_text(value), location=location)


def normalize_env(
    ctx: Normalizer, env: Any, env_file: Any, path: FieldPath
) -> tuple[FrozenDict[str, EnvValue], tuple[EnvFile, ...]]:
    """The resolved environment and the env files read, for the container at ``path``."""
    result: dict[str, EnvValue] = {}
    files: list[EnvFile] = []
    entries = [env_file] if isinstance(env_file, str | Mapping) else (env_file or [])
    for index, entry in enumerate(entries):
        item_path = (
            (*path, "env_file")
            if isinstance(env_file, str | Mapping)
            else (
                *path,
                "env_file",
                index,
            )
        )
        read = _read_env_file(ctx, entry, item_path, result)
        if read is not None:
            files.append(read)
    if isinstance(env, Mapping):
        for key, value in env.items():
            result[str(key)] = _env_value(ctx, value, (*path, "env", str(key)))
    elif isinstance(env, list):
        for index, item in enumerate(env):
            text = scalar_text(item)
            key, sep, value = text.partition("=")
            if not sep or not key:
                ctx.problem(
                    (*path, "env", index),
                    f"expected KEY=VALUE, got {text!r}",
                    hint=f"write '{key or 'KEY'}=' for an empty value",
                )
                continue
            result[key] = EnvValue(value=value, location=ctx.locate((*path, "env", index)))
    return FrozenDict(result), tuple(files)
