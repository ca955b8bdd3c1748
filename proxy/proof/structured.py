"""Structured Field Values (RFC 8941): the subset HTTP signatures and digests use.

Dictionaries, inner lists, items and parameters with integer, decimal,
string, token, byte sequence and boolean values, parsed and serialized per the
algorithms of RFC 8941 sections 4.1 and 4.2, with one deliberate tightening:
a dictionary or parameter list that repeats a key is refused rather than
"last one wins", so a proxy and a backend can never read two different values
out of one header.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Final

from proxy.proof.errors import ProofError

_KEY: Final = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN: Final = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
_B64: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_NUMBER: Final = re.compile(r"-?(\d{1,15})(\.\d{1,3})?")
_MAX_INT: Final = 999_999_999_999_999


@dataclass(frozen=True)
class Token:
    """An sf-token (unquoted identifier)."""

    value: str


BareItem = int | float | str | bytes | bool | Token


@dataclass(frozen=True)
class Item:
    """A bare item with parameters."""

    value: BareItem
    params: dict[str, BareItem] = field(default_factory=dict)


@dataclass(frozen=True)
class InnerList:
    """A parenthesised list of items with parameters."""

    items: list[Item]
    params: dict[str, BareItem] = field(default_factory=dict)


Member = Item | InnerList


# -- serialization (RFC 8941 section 4.1) ---------------------------------------


def serialize_dictionary(members: dict[str, Member]) -> str:
    """A dictionary field value; ``True`` items serialize as the bare key."""
    if not members:
        raise ValueError("structured: an empty dictionary is not a field value")
    out = []
    for key, member in members.items():
        _check_key(key)
        if isinstance(member, Item) and member.value is True:
            out.append(key + serialize_params(member.params))
        else:
            out.append(f"{key}={serialize_member(member)}")
    return ", ".join(out)


def serialize_member(member: Member) -> str:
    """An item or inner list with its parameters."""
    if isinstance(member, InnerList):
        inner = " ".join(serialize_member(item) for item in member.items)
        return f"({inner}){serialize_params(member.params)}"
    return serialize_bare(member.value) + serialize_params(member.params)


def serialize_params(params: dict[str, BareItem]) -> str:
    """``;key=value`` for each parameter (``;key`` for true)."""
    out = []
    for key, value in params.items():
        _check_key(key)
        out.append(f";{key}" if value is True else f";{key}={serialize_bare(value)}")
    return "".join(out)


def serialize_bare(value: BareItem) -> str:
    """One bare item."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > _MAX_INT:
            raise ValueError("structured: integer out of range")
        return str(value)
    if isinstance(value, float):
        text = f"{round(value, 3):.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, str):
        if not _PRINTABLE.fullmatch(value):
            raise ValueError("structured: string must be printable ascii")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if not _TOKEN.fullmatch(value.value):
        raise ValueError("structured: invalid token")
    return value.value


def _check_key(key: str) -> None:
    if not _KEY.fullmatch(key):
        raise ValueError("structured: invalid key")


# -- parsing (RFC 8941 section 4.2) ---------------------------------------------


def parse_dictionary(text: str) -> dict[str, Member]:
    """Parse a dictionary field value; any syntax error raises :class:`ProofError`."""
    parser = _Parser(text)
    members: dict[str, Member] = {}
    parser.skip_sp()
    while not parser.done():
        key = parser.key()
        if key in members:
            raise ProofError("structured: duplicate dictionary key")
        if parser.peek() == "=":
            parser.pos += 1
            members[key] = parser.item_or_inner_list()
        else:
            members[key] = Item(True, parser.params())
        parser.skip_ows()
        if parser.done():
            break
        parser.expect(",")
        parser.skip_ows()
        if parser.done():
            raise ProofError("structured: trailing comma")
    return members


class _Parser:
    def __init__(self, text: str) -> None:
        if not text.isascii():
            raise ProofError("structured: non-ascii field")
        self.text = text
        self.pos = 0

    def done(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise ProofError(f"structured: expected {char!r}")
        self.pos += 1

    def skip_sp(self) -> None:
        while self.peek() == " ":
            self.pos += 1

    def skip_ows(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.pos += 1

    def key(self) -> str:
        match = _KEY.match(self.text, self.pos)
        if not match:
            raise ProofError("structured: invalid key")
        self.pos = match.end()
        return match.group()

    def item_or_inner_list(self) -> Member:
        if self.peek() == "(":
            return self.inner_list()
        return Item(self.bare(), self.params())

    def inner_list(self) -> InnerList:
        self.expect("(")
        items: list[Item] = []
        while True:
            self.skip_sp()
            if self.peek() == ")":
                self.pos += 1
                return InnerList(items, self.params())
            items.append(Item(self.bare(), self.params()))
            if self.peek() not in (" ", ")"):
                raise ProofError("structured: bad inner list")

    def params(self) -> dict[str, BareItem]:
        params: dict[str, BareItem] = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip_sp()
            key = self.key()
            if key in params:
                raise ProofError("structured: duplicate parameter")
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare()
            params[key] = value
        return params

    def bare(self) -> BareItem:
        char = self.peek()
        if char == "-" or char.isdigit():
            return self.number()
        if char == '"':
            return self.string()
        if char == ":":
            return self.byte_sequence()
        if char == "?":
            return self.boolean()
        if char.isalpha() or char == "*":
            match = _TOKEN.match(self.text, self.pos)
            if match is None:
                raise ProofError("structured: bad token")
            self.pos = match.end()
            return Token(match.group())
        raise ProofError("structured: unknown item type")

    def number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if not match or (match.group(2) and len(match.group(1)) > 12):
            raise ProofError("structured: bad number")
        end = match.end()
        if end < len(self.text) and (self.text[end].isdigit() or self.text[end] == "."):
            raise ProofError("structured: number too long")
        self.pos = end
        return float(match.group()) if match.group(2) else int(match.group())

    def string(self) -> str:
        self.expect('"')
        out = []
        while not self.done():
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\":
                if self.peek() not in ('"', "\\"):
                    raise ProofError("structured: bad escape")
                out.append(self.peek())
                self.pos += 1
            elif char == '"':
                return "".join(out)
            elif not 0x20 <= ord(char) <= 0x7E:
                raise ProofError("structured: bad string character")
            else:
                out.append(char)
        raise ProofError("structured: unterminated string")

    def byte_sequence(self) -> bytes:
        self.expect(":")
        end = self.text.find(":", self.pos)
        if end < 0:
            raise ProofError("structured: unterminated byte sequence")
        body = self.text[self.pos : end]
        self.pos = end + 1
        if not set(body) <= _B64:
            raise ProofError("structured: bad byte sequence")
        try:
            return base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
        except (binascii.Error, ValueError) as e:
            raise ProofError("structured: bad byte sequence") from e

    def boolean(self) -> bool:
        self.expect("?")
        char = self.peek()
        if char not in ("0", "1"):
            raise ProofError("structured: bad boolean")
        self.pos += 1
        return char == "1"
