"""The code of dataclasses' generated methods, compiled once and kept between runs.

Python 3.11 and 3.12 make every dataclass's ``__init__``, ``__repr__``, ``__eq__``,
``__hash__``, ``__setattr__``... by compiling a few lines of source text each
(``dataclasses._create_fn``): about 1 ms per class on this project's machine, and a no-op
``declarun plan`` defines ~140 of them, so that compiling was the largest single cost of the
command (0.12-0.18 s of its ~0.35 s after the interpreter; issue 16). The text is the same on
every run, so the CLI keeps the compiled code objects (``marshal``) in the user's cache,
keyed by the exact text, and :func:`install` makes ``_create_fn`` take them from there.

What a class gets is unchanged: the same text compiled the same way (``compile`` of the
text as ``exec`` does it) and run in the same namespaces; only the compiling is skipped.
Installed only for the interpreter versions whose ``_create_fn`` this module reproduces
(3.11, 3.12: checked by their argument names and return-type local), and only by the CLI's
entry point: the daemon, tests and other users of the package keep the stdlib as it is.
Python 3.13 compiles all of a class's methods at once and needs none of this.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

__all__ = ["cache_path", "install"]

# A cache that grew past this many texts (stale ones from older releases) starts again.
_MAX_ENTRIES = 5000
_EXPECTED_ARGS = ("name", "args", "body", "globals", "locals", "return_type")
_RETURN_LOCAL = {(3, 11): "_return_type", (3, 12): "__dataclass_return_type__"}


def cache_path() -> Path:
    """Where the compiled code is kept: ``$XDG_CACHE_HOME/declarun`` (``~/.cache``), one file
    per interpreter (its bytecode tag: marshal's format and the compiler's output)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    tag = sys.implementation.cache_tag or "unknown"
    return Path(base) / "declarun" / f"dataclass-code-{tag}-1.marshal"


class _Cache:
    """The texts and their code, loaded on first use and written back at exit if it grew.

    Each code object is kept marshalled on its own and read only when its text comes up:
    reading the whole file is then a copy of bytes, not ~800 code objects built up front.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.codes: dict[str, bytes] | None = None
        self.added = 0

    def load(self) -> dict[str, bytes]:
        if self.codes is None:
            self.codes = {}
            with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
                loaded = marshal.loads(self.path.read_bytes())
                if isinstance(loaded, dict) and len(loaded) < _MAX_ENTRIES:
                    self.codes = loaded
        return self.codes

    def code(self, text: str) -> CodeType:
        codes = self.load()
        found = codes.get(text)
        if found is not None:
            with contextlib.suppress(ValueError, EOFError, TypeError):
                code = marshal.loads(found)
                if isinstance(code, CodeType):
                    return code
        code = compile(text, "<string>", "exec")
        codes[text] = marshal.dumps(code)
        self.added += 1
        return code

    def save(self) -> None:
        """Write the cache when this run compiled something new (atomically: another run may
        read it meanwhile; the last writer wins, which only costs a compile next time)."""
        if not self.added or self.codes is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            partial.write_bytes(marshal.dumps(self.codes))
            os.replace(partial, self.path)


def _reproducible() -> str | None:
    """The return-type local name of this interpreter's ``_create_fn`` when this module
    reproduces it, else None."""
    return_local = _RETURN_LOCAL.get(sys.version_info[:2])
    original = getattr(dataclasses, "_create_fn", None)
    code = getattr(original, "__code__", None)
    if return_local is None or code is None:
        return None
    if code.co_varnames[: len(_EXPECTED_ARGS)] != _EXPECTED_ARGS:
        return None
    if return_local not in code.co_consts:
        return None
    return return_local


_installed = False


def install(path: Path | None = None) -> bool:
    """Make dataclasses take their generated methods' code from the cache at ``path``
    (default :func:`cache_path`); True when installed (or already), False on an interpreter
    whose ``_create_fn`` this module does not reproduce."""
    global _installed
    if _installed:
        return True
    return_local = _reproducible()
    if return_local is None:
        return False
    cache = _Cache(path or cache_path())
    missing = dataclasses.MISSING

    # dataclasses._create_fn of 3.11/3.12, line for line, with the compile cached.
    def _create_fn(
        name: str,
        args: list[str],
        body: list[str],
        *,
        globals: dict[str, Any] | None = None,  # the stdlib's own names
        locals: dict[str, Any] | None = None,
        return_type: Any = missing,
    ) -> Any:
        if locals is None:
            locals = {}
        return_annotation = ""
        if return_type is not missing:
            locals[return_local] = return_type
            return_annotation = f"->{return_local}"
        joined_args = ",".join(args)
        joined_body = "\n".join(f"  {b}" for b in body)
        text = f" def {name}({joined_args}){return_annotation}:\n{joined_body}"
        local_vars = ", ".join(locals.keys())
        text = f"def __create_fn__({local_vars}):\n{text}\n return {name}"
        namespace: dict[str, Any] = {}
        exec(cache.code(text), globals, namespace)  # what dataclasses does
        return namespace["__create_fn__"](**locals)

    dataclasses._create_fn = _create_fn  # type: ignore[attr-defined]
    atexit.register(cache.save)
    _installed = True
    return True
