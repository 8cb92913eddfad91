"""Container ids and generated names.

Ids are 64 random hex digits, as Docker's; an id whose first 12 digits are all decimal is
drawn again (Docker does the same so a short id can never be mistaken for a number).
Names for containers created without one are ``<adjective>_<scientist>`` in Docker's style,
from a short word list of our own; a collision gets a numeric suffix.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

__all__ = ["generate_name", "new_container_id"]

_ADJECTIVES = (
    "agile", "bold", "brave", "calm", "clever", "eager", "fervent", "gentle", "happy",
    "jolly", "keen", "lucid", "merry", "nifty", "quirky", "serene", "sharp", "stoic",
    "sweet", "tender", "upbeat", "vibrant", "wizardly", "zealous",
)  # fmt: skip
_SCIENTISTS = (
    "babbage", "bohr", "curie", "darwin", "dijkstra", "euler", "faraday", "gauss", "hopper",
    "hypatia", "kepler", "knuth", "lamarr", "lovelace", "meitner", "newton", "noether",
    "pascal", "ritchie", "shannon", "thompson", "turing", "wozniak", "yalow",
)  # fmt: skip


def new_container_id() -> str:
    """A fresh container id (64 lowercase hex digits, not all-decimal in its short form)."""
    while True:
        cid = secrets.token_hex(32)
        if not cid[:12].isdigit():
            return cid


def generate_name(taken: Callable[[str], bool]) -> str:
    """A name in Docker's ``adjective_surname`` style that ``taken`` does not refuse."""
    for attempt in range(20):
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_SCIENTISTS)}"
        if attempt >= 10:
            name += str(secrets.randbelow(100))
        if not taken(name):
            return name
    return f"container_{secrets.token_hex(6)}"
