"""Jinja2 templating of a stack's string values, one scalar at a time.

Templating runs on parsed values, never on the file's text, so it cannot shift line numbers:
an error in a template points at the scalar that holds it. Templates run in Jinja's immutable
sandbox (a stack file from a repository must not reach Python internals), and an undefined
variable is an error that names it instead of an empty string.

A scalar that is exactly one ``{{ expression }}`` keeps the expression's type, so
``replicas: "{{ vars.n }}"`` yields an integer when ``vars.n`` is one; anything else renders
to a string.

Most templates only name a variable (``{{ vars.registry }}/app:{{ vars.tag }}``): those are
filled in directly, with what Jinja would give, and Jinja itself (about a tenth of ``declarun
validate``'s start-up, issue 16) is imported for the first template that does more, or names
something that is not there (its error says what).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from declarun.errors import Problem, SourceLocation
from declarun.stack.load import DataPath, format_path

if TYPE_CHECKING:
    import jinja2

__all__ = ["Namespace", "TemplateRenderer", "has_template"]

_MARKERS = ("{{", "{%", "{#")
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}).)*)\}\}\s*$", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
# ``{{ name }}`` or ``{{ name.key.key }}``: filled in without Jinja when every part is there.
_VARIABLE = re.compile(r"\{\{\s*(" + _NAME + r"(?:\." + _NAME + r")*)\s*\}\}")
_OPENINGS = re.compile(r"(?=\{\{)")
_NOT_FOUND = object()


def has_template(text: str) -> bool:
    """True when ``text`` contains Jinja syntax and needs rendering."""
    return any(marker in text for marker in _MARKERS)


class Namespace(dict[str, Any]):
    """A mapping exposed to templates under a name (``vars``, ``env``), so errors can name it."""

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.namespace_name = name


def _environment() -> jinja2.sandbox.ImmutableSandboxedEnvironment:
    """Jinja's immutable sandbox with undefined names as named errors (imports Jinja)."""
    import jinja2
    import jinja2.sandbox

    class _NamedUndefined(jinja2.StrictUndefined):
        """StrictUndefined whose message says ``vars.tag`` rather than ``'dict object' has no ...``."""

        @property
        def _undefined_message(self) -> str:
            owner = self._undefined_obj
            name = self._undefined_name
            if isinstance(owner, Namespace):
                return f"undefined variable '{owner.namespace_name}.{name}'"
            if owner is jinja2.utils.missing:
                return f"undefined variable '{name}'"
            return f"{type(owner).__name__} value has no attribute or key '{name}'"

        def _fail_with_undefined_error(self, *args: Any, **kwargs: Any) -> NoReturn:
            raise jinja2.UndefinedError(self._undefined_message)

        __str__ = _fail_with_undefined_error
        __iter__ = _fail_with_undefined_error
        __bool__ = _fail_with_undefined_error
        __len__ = _fail_with_undefined_error

    return jinja2.sandbox.ImmutableSandboxedEnvironment(
        undefined=_NamedUndefined, autoescape=False, keep_trailing_newline=True
    )


def _lookup(context: Mapping[str, Any], dotted: str) -> Any:
    """The value ``{{ dotted }}`` names, found as Jinja's sandbox finds it in mappings (a key
    that is not also an attribute of the mapping), else ``_NOT_FOUND``."""
    first, *keys = dotted.split(".")
    value = context.get(first, _NOT_FOUND)
    for key in keys:
        if not isinstance(value, dict) or hasattr(value, key) or key not in value:
            return _NOT_FOUND
        value = value[key]
    return value


def _filled_in(text: str, context: Mapping[str, Any]) -> Any:
    """What Jinja renders ``text`` to, when it only names variables that are there and the
    answer is certain without Jinja; else ``_NOT_FOUND``."""
    if "{%" in text or "{#" in text or "\r" in text:
        return _NOT_FOUND  # statements, comments; Jinja also rewrites line endings
    found = list(_VARIABLE.finditer(text))
    if {m.start() for m in _OPENINGS.finditer(text)} != {m.start() for m in found}:
        return _NOT_FOUND  # a "{{" that is not one of these
    values = [_lookup(context, m.group(1)) for m in found]
    if any(value is _NOT_FOUND for value in values):
        return _NOT_FOUND
    if len(found) == 1 and not (text[: found[0].start()] + text[found[0].end() :]).strip():
        return _plain(values[0])  # one lone expression keeps its type
    if not all(type(value) in (str, int) for value in values):
        return _NOT_FOUND  # how Jinja prints other types is Jinja's business
    parts: list[str] = []
    last = 0
    for match, value in zip(found, values, strict=True):
        parts.append(text[last : match.start()])
        parts.append(str(value))
        last = match.end()
    parts.append(text[last:])
    return "".join(parts)


class TemplateRenderer:
    """Renders every string value of a data tree against a fixed context."""

    def __init__(self, context: Mapping[str, Any]) -> None:
        self._env: jinja2.sandbox.ImmutableSandboxedEnvironment | None = None
        self._context = dict(context)
        # Stacks repeat the same template across many containers; compile each text once.
        self._compiled: dict[str, Callable[..., Any]] = {}

    def render_tree(
        self,
        data: Any,
        locate: Callable[[DataPath], SourceLocation],
        problems: list[Problem],
        path: DataPath = (),
    ) -> Any:
        """Render every templated string of ``data`` in place, and return ``data``.

        In place because the data comes fresh from the loader and big stacks are mostly plain
        text: copying every list and mapping cost more than the rendering. Problems are appended
        to ``problems`` (located at the scalar) and the original text is kept for that value, so
        one bad template does not hide the others.
        """
        if isinstance(data, str):
            return self._render_at(data, path, locate, problems)
        if not isinstance(data, dict | list):
            return data
        pending: list[tuple[Any, DataPath]] = [(data, path)]
        while pending:
            node, node_path = pending.pop()
            entries = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in entries:
                if isinstance(value, str):
                    if "{" in value and has_template(value):
                        node[key] = self._render_at(value, (*node_path, key), locate, problems)
                elif isinstance(value, dict | list):
                    pending.append((value, (*node_path, key)))
        return data

    def _render_at(
        self,
        text: str,
        path: DataPath,
        locate: Callable[[DataPath], SourceLocation],
        problems: list[Problem],
    ) -> Any:
        if not has_template(text):
            return text
        try:
            return self.render_value(text)
        except _TemplateFailure as exc:
            problems.append(Problem(locate(path), format_path(path), str(exc)))
            return text

    def render_value(self, text: str) -> Any:
        """Render one scalar; raises ``_TemplateFailure`` with a readable message."""
        filled = _filled_in(text, self._context)
        if filled is not _NOT_FOUND:
            return filled
        import jinja2

        try:
            return _plain(self._compile(text)(**self._context))
        except jinja2.UndefinedError as exc:
            raise _TemplateFailure(str(exc)) from None
        except jinja2.TemplateSyntaxError as exc:
            raise _TemplateFailure(f"template syntax error: {exc.message}") from None
        except jinja2.exceptions.SecurityError as exc:
            raise _TemplateFailure(f"template not allowed: {exc}") from None
        except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as exc:
            raise _TemplateFailure(f"template error: {exc}") from None
        except jinja2.TemplateError as exc:
            raise _TemplateFailure(f"template error: {exc}") from None
        except RecursionError:
            raise _TemplateFailure("template error: recursion too deep") from None

    def _compile(self, text: str) -> Callable[..., Any]:
        compiled = self._compiled.get(text)
        if compiled is None:
            if self._env is None:
                self._env = _environment()
            single = _SINGLE_EXPRESSION.match(text)
            if single is not None:
                compiled = self._env.compile_expression(
                    single.group("expr"), undefined_to_none=False
                )
            else:
                compiled = self._env.from_string(text).render
            self._compiled[text] = compiled
        return compiled


class _TemplateFailure(Exception):
    pass


def _plain(value: Any) -> Any:
    """Reduce a template result to the plain types the schema understands."""
    jinja = sys.modules.get("jinja2")  # a value can only be Jinja's once Jinja is loaded
    if jinja is not None and isinstance(value, jinja.Undefined):
        # Forces the undefined error with its message.
        str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)
