"""The Jinja-free fast path of ``declarun.stack.template`` gives what Jinja gives.

Templates that only name variables are filled in without Jinja (issue 16: Jinja's import was a
tenth of ``validate``'s start-up). That is only right if, whenever the fast path answers, its
answer is Jinja's: checked here on generated templates — text with stray braces, ``%``, ``#``,
line endings, lone and embedded references, names that are also dict attributes, missing keys,
and values of every type a stack's variables can hold — against the same renderer's Jinja path.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from declarun.stack import template
from declarun.stack.template import Namespace, TemplateRenderer

# Keys include names that are also attributes of a dict ("items", "get"): Jinja's sandbox
# finds the method there, not the key, and the fast path must step aside for them.
_KEYS = st.sampled_from(["tag", "n", "items", "get", "a_b", "X1", "missing"])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)
_CONTEXTS = st.builds(
    lambda v, e: {"vars": Namespace("vars", v), "env": Namespace("env", e)},
    st.dictionaries(_KEYS, _VALUES, max_size=5),
    st.dictionaries(_KEYS, st.text(max_size=5), max_size=3),
)
_REFERENCES = st.builds(
    lambda root, keys, left, right: "{{" + left + ".".join([root, *keys]) + right + "}}",
    st.sampled_from(["vars", "env", "other"]),
    st.lists(_KEYS, max_size=3),
    st.sampled_from(["", " ", "  ", "\n"]),
    st.sampled_from(["", " ", "\t"]),
)
# Literal text, with the characters that make Jinja syntax or that Jinja rewrites.
_LITERALS = st.text(st.sampled_from("ab :/-_.{}%#\n\r\t'\"$"), max_size=6)
_TEMPLATES = st.lists(st.one_of(_REFERENCES, _LITERALS), min_size=1, max_size=5).map("".join)


def _by_jinja(renderer: TemplateRenderer, text: str) -> tuple[str, Any]:
    """What the renderer's Jinja path gives: ("value", v) or ("error", message)."""
    try:
        return "value", template._plain(renderer._compile(text)(**renderer._context))
    except Exception as exc:  # any failure means the fast path must not have answered
        return "error", f"{type(exc).__name__}: {exc}"


@settings(max_examples=600, deadline=None)
@given(context=_CONTEXTS, text=_TEMPLATES)
def test_the_fast_path_answers_only_with_what_jinja_answers(
    context: dict[str, Any], text: str
) -> None:
    renderer = TemplateRenderer(context)
    filled = template._filled_in(text, renderer._context)
    if filled is template._NOT_FOUND:
        return  # left to Jinja: nothing to compare
    assert _by_jinja(renderer, text) == ("value", filled), text


@settings(max_examples=300, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from(["tag", "n", "a_b", "X1"]),
        st.one_of(st.integers(-999, 999), st.text(st.sampled_from("ab1.:-/ "), max_size=6)),
        min_size=1,
    ),
    data=st.data(),
)
def test_plain_references_to_strings_and_numbers_take_the_fast_path(
    values: dict[str, Any], data: st.DataObject
) -> None:
    """The common case really avoids Jinja (else the property above would be vacuous)."""
    names = sorted(values)
    pieces = data.draw(
        st.lists(
            st.one_of(
                st.sampled_from(names).map(lambda name: "{{ vars." + name + " }}"),
                st.text(st.sampled_from("ab :/-_.\n"), max_size=5),
            ),
            min_size=1,
            max_size=5,
        )
    )
    text = "".join(pieces)
    renderer = TemplateRenderer({"vars": Namespace("vars", values)})
    filled = template._filled_in(text, renderer._context)
    if "{{" in text:
        assert filled is not template._NOT_FOUND, text
        assert _by_jinja(renderer, text) == ("value", filled), text
