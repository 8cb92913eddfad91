"""The subset of the DNS wire format (RFC 1035) the embedded server needs.

Parsing is limited to a query's header and first question; answers are built for ``A`` and
``PTR`` records and for error codes. Anything else is forwarded byte for byte, so nothing
here has to understand a full message.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "CLASS_IN",
    "FORMERR",
    "MAX_UDP_ANSWER",
    "NOERROR",
    "NOTIMP",
    "NXDOMAIN",
    "SERVFAIL",
    "TYPE_A",
    "TYPE_AAAA",
    "TYPE_ANY",
    "TYPE_PTR",
    "DnsFormatError",
    "Question",
    "build_answer",
    "build_error",
    "build_query",
    "parse_query",
    "ptr_address",
]

TYPE_A = 1
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_ANY = 255
CLASS_IN = 1

NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4

MAX_UDP_ANSWER = 512
_HEADER = struct.Struct("!HHHHHH")
_QR = 0x8000
_AA = 0x0400
_TC = 0x0200
_RD = 0x0100
_RA = 0x0080


class DnsFormatError(ValueError):
    """The bytes are not a DNS query this server can parse."""


@dataclass(frozen=True)
class Question:
    """The header fields and first question of a query; ``name`` lower-case, no final dot."""

    id: int
    flags: int
    name: str
    qtype: int
    qclass: int
    raw_question: bytes

    @property
    def opcode(self) -> int:
        """The query's opcode (0: a standard query)."""
        return (self.flags >> 11) & 0xF


def parse_query(data: bytes) -> Question:
    """Parse a query's header and first question; :class:`DnsFormatError` if malformed."""
    if len(data) < _HEADER.size:
        raise DnsFormatError("short header")
    ident, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & _QR:
        raise DnsFormatError("not a query")
    if qdcount < 1:
        raise DnsFormatError("no question")
    labels: list[str] = []
    offset = _HEADER.size
    while True:
        if offset >= len(data):
            raise DnsFormatError("truncated name")
        length = data[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:
            # A query's first name cannot point backwards: nothing precedes it.
            raise DnsFormatError("compressed name in question")
        label = data[offset : offset + length]
        if len(label) != length:
            raise DnsFormatError("truncated label")
        labels.append(label.decode("ascii", errors="replace").lower())
        offset += length
    if offset + 4 > len(data):
        raise DnsFormatError("truncated question")
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    raw = data[_HEADER.size : offset + 4]
    return Question(ident, flags, ".".join(labels), qtype, qclass, raw)


def _header(question: Question, rcode: int, answers: int, truncated: bool = False) -> bytes:
    flags = _QR | _AA | _RA | (question.flags & (_RD | 0x7800)) | rcode
    if truncated:
        flags |= _TC
    return _HEADER.pack(question.id, flags, 1, answers, 0, 0)


def build_error(question: Question, rcode: int) -> bytes:
    """A response with no answers and ``rcode`` (``NOERROR`` here means "no such type")."""
    return _header(question, rcode, 0) + question.raw_question


def build_answer(
    question: Question,
    addresses: list[ipaddress.IPv4Address] | None = None,
    ptr_name: str | None = None,
    ttl: int = 0,
    limit: int | None = MAX_UDP_ANSWER,
) -> bytes:
    """A response answering ``question`` with A records or one PTR record.

    Answers that would not fit in ``limit`` bytes (UDP) are left off and the response is
    marked truncated, so the client retries over TCP.
    """
    records: list[bytes] = []
    # 0xC00C: a pointer to the question's name, right after the 12-byte header.
    for address in addresses or []:
        records.append(struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, ttl, 4) + address.packed)
    if ptr_name is not None:
        rdata = _encode_name(ptr_name)
        records.append(struct.pack("!HHHIH", 0xC00C, TYPE_PTR, CLASS_IN, ttl, len(rdata)) + rdata)
    body = question.raw_question
    size = _HEADER.size + len(body)
    kept: list[bytes] = []
    for record in records:
        if limit is not None and size + len(record) > limit:
            return _header(question, NOERROR, len(kept), truncated=True) + body + b"".join(kept)
        kept.append(record)
        size += len(record)
    return _header(question, NOERROR, len(kept)) + body + b"".join(kept)


def build_query(ident: int, name: str, qtype: int = TYPE_A) -> bytes:
    """A standard recursive query for ``name`` (used by tests and health checks)."""
    return (
        _HEADER.pack(ident, _RD, 1, 0, 0, 0)
        + _encode_name(name)
        + struct.pack("!HH", qtype, CLASS_IN)
    )


def ptr_address(name: str) -> ipaddress.IPv4Address | None:
    """The address a ``d.c.b.a.in-addr.arpa`` name asks about, or ``None``."""
    suffix = ".in-addr.arpa"
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split(".")
    if len(parts) != 4:
        return None
    try:
        return ipaddress.IPv4Address(".".join(reversed(parts)))
    except ValueError:
        return None


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii", errors="replace")[:63]
        if raw:
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)
