"""Compose interpolation written as the stack language's templating (Jinja2 over ``env``).

``convert`` keeps a secret as a reference instead of writing its value into the stack file:
``postgres://app:${DB_PASSWORD}@db/app`` becomes
``{{ 'postgres://app:' ~ (env.DB_PASSWORD | default('')) ~ '@db/app' }}``, which the stack
language renders from the environment of the process running declarun, as Compose does.
Each form keeps its meaning: ``:-`` and ``-`` defaults (for unset-or-empty, and for unset),
``:+`` and ``+`` alternatives, ``:?`` and ``?`` required variables (an undefined variable is
an error in the stack language), and ``$$``.
"""

from __future__ import annotations

import re

from declarun.compose.interpolate import InterpolationError

__all__ = ["escape_template", "interpolation_to_jinja", "jinja_string"]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_MARKERS = ("{{", "{%", "{#")


def jinja_string(text: str) -> str:
    """``text`` as a Jinja string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def escape_template(text: str) -> str:
    """``text`` made safe from the stack language's templating (it renders to itself)."""
    if not any(marker in text for marker in _MARKERS):
        return text
    return "{{ " + jinja_string(text) + " }}"


def _variable(name: str) -> str:
    # The sandbox refuses attributes starting with '_'; a subscript reads the same mapping.
    return f"env.{name}" if not name.startswith("_") else f"env[{jinja_string(name)}]"


def _closing(text: str, start: int) -> int:
    depth, index = 1, start
    while index < len(text):
        if text.startswith("$$", index):
            index += 2
            continue
        if text.startswith("${", index):
            depth += 1
            index += 2
            continue
        if text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    raise InterpolationError(f"invalid interpolation {text!r}: no closing }}")


class _Writer:
    def __init__(self) -> None:
        self.variables: list[str] = []

    def use(self, name: str) -> str:
        if name not in self.variables:
            self.variables.append(name)
        return _variable(name)

    def expression(self, text: str) -> str:
        parts: list[str] = []
        literal: list[str] = []

        def flush() -> None:
            if literal:
                parts.append(jinja_string("".join(literal)))
                literal.clear()

        index = 0
        while index < len(text):
            char = text[index]
            following = text[index + 1 : index + 2]
            if char != "$":
                literal.append(char)
                index += 1
            elif following == "$":
                literal.append("$")
                index += 2
            elif following == "{":
                end = _closing(text, index + 2)
                flush()
                parts.append(self.braced(text[index + 2 : end]))
                index = end + 1
            else:
                name = _NAME.match(text, index + 1)
                if name is None:
                    literal.append("$")
                    index += 1
                    continue
                flush()
                parts.append(f"({self.use(name.group())} | default(''))")
                index = name.end()
        flush()
        return " ~ ".join(parts) if parts else "''"

    def braced(self, content: str) -> str:
        name_match = _NAME.match(content)
        if name_match is None:
            raise InterpolationError(f"invalid interpolation '${{{content}}}'")
        variable = self.use(name_match.group())
        rest = content[name_match.end() :]
        if not rest:
            return f"({variable} | default(''))"
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise InterpolationError(f"invalid interpolation '${{{content}}}'")
        argument = self.expression(rest[len(operator) :])
        if operator == ":-":
            return f"({variable} | default({argument}, true))"
        if operator == "-":
            return f"({variable} if {variable} is defined else {argument})"
        if operator == ":+":
            return f"(({argument}) if {variable} | default('') else '')"
        if operator == "+":
            return f"(({argument}) if {variable} is defined else '')"
        return variable  # :? and ?: an undefined variable is the stack language's error


def interpolation_to_jinja(raw: str) -> tuple[str, tuple[str, ...]]:
    """A template of the stack language meaning what Compose's ``raw`` means, and the
    variables it reads. Raises :class:`InterpolationError` when ``raw`` is malformed."""
    writer = _Writer()
    expression = writer.expression(raw)
    if expression.startswith("(") and expression.endswith(")") and _balanced(expression[1:-1]):
        expression = expression[1:-1]  # one part alone needs no parentheses
    return "{{ " + expression + " }}", tuple(writer.variables)


def _balanced(text: str) -> bool:
    """Whether the parentheses of ``text`` (outside string literals) pair up in order."""
    depth, quoted, index = 0, False, 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
        index += 1
    return depth == 0
