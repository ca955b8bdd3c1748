"""RFC 9421 HTTP Message Signatures over the request the gateway forwards.

The signature base (RFC 9421 section 2.5) is built exactly as the RFC says:

- one line per covered component, in the covered order: the component
  identifier as an sf-string, ``": "``, and its value; lines joined by LF;
- derived components: ``@method`` (the method as sent), ``@authority`` (host
  lowercase, default port dropped), ``@path`` (``/`` when empty, encoding as
  sent), ``@query`` (``?`` plus the query, or ``?`` alone when absent or empty);
- header fields: lowercase name; each field line's value with surrounding
  whitespace trimmed, several lines joined with ``", "``;
- last, ``"@signature-params"`` and the serialized inner list of component
  identifiers with the parameters (the same text as the Signature-Input member).

What the gateway covers (DESIGN.md "Proving requests to the backend"): label
``tokengate``; ``@method @authority @path @query tokengate-identity``, plus
``content-digest`` on buffered routes (tag ``tokengate``) or ``content-length``
when known on streamed ones (tag ``tokengate-stream``: the body is not
covered); parameters ``created``, ``keyid``, ``alg="ed25519"``, ``nonce``, ``tag``.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from multidict import CIMultiDict

from proxy.auth.jose import EDDSA, SigningKey, b64url_encode
from proxy.proof.structured import (
    BareItem,
    InnerList,
    Item,
    serialize_bare,
    serialize_dictionary,
    serialize_member,
)

LABEL: Final = "tokengate"
ALG_ED25519: Final = "ed25519"
TAG_BUFFERED: Final = "tokengate"
TAG_STREAM: Final = "tokengate-stream"
UPSTREAM_COMPONENTS: Final = ("@method", "@authority", "@path", "@query", "tokengate-identity")
_STREAMED_WITH_LENGTH: Final = (*UPSTREAM_COMPONENTS, "content-length")
_BUFFERED: Final = (*UPSTREAM_COMPONENTS, "content-digest")
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}
_AUTHORITY: Final = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::(\d{1,5}))?")


@dataclass(frozen=True)
class RequestView:
    """The parts of a request a signature can cover (fields keyed by lowercase name)."""

    method: str
    authority: str
    path: str
    query: str | None
    fields: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(
        cls,
        *,
        method: str,
        authority: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        scheme: str = "https",
    ) -> RequestView:
        """From an origin-form request target (``/path?query``) and header field lines."""
        if not target.startswith("/"):
            raise ValueError("signature: target must be in origin form")
        path, sep, query = target.partition("?")
        fields: dict[str, list[str]] = {}
        for name, value in headers:
            fields.setdefault(name.lower(), []).append(value)
        return cls(
            method=method,
            authority=normalise_authority(authority, scheme),
            path=path,
            query=query if sep else None,
            fields={k: tuple(v) for k, v in fields.items()},
        )

    def component(self, name: str) -> str:
        """One covered component's value; KeyError if absent, ValueError if unsignable."""
        if name == "@method":
            value = self.method
        elif name == "@authority":
            value = self.authority
        elif name == "@path":
            value = self.path or "/"
        elif name == "@query":
            value = f"?{self.query or ''}"
        elif name.startswith("@") or name != name.lower():
            raise KeyError(name)
        else:
            value = ", ".join(line.strip(" \t") for line in self.fields[name])
        if "\r" in value or "\n" in value or not value.isascii():
            raise ValueError("signature: component value is not signable")
        return value


def normalise_authority(authority: str, scheme: str = "https") -> str:
    """Host lowercase, the scheme's default port dropped (RFC 9421 section 2.2.3)."""
    match = _AUTHORITY.fullmatch(authority)
    if match is None:
        raise ValueError("signature: invalid authority")
    host, port = match.group(1), match.group(2) or ""
    if port == _DEFAULT_PORTS.get(scheme.lower()):
        port = ""
    return host.lower() + (f":{port}" if port else "")


@dataclass(frozen=True)
class SignatureParams:
    """The covered components and metadata parameters of one signature."""

    components: tuple[str, ...]
    created: int
    keyid: str
    alg: str | None = ALG_ED25519
    nonce: str | None = None
    tag: str | None = None
    expires: int | None = None

    def inner_list(self) -> InnerList:
        """The Signature-Input member: ``("@method" ...);created=...;keyid=...``."""
        params: dict[str, BareItem] = {"created": self.created}
        optional: list[tuple[str, int | str | None]] = [
            ("expires", self.expires),
            ("keyid", self.keyid),
            ("alg", self.alg),
            ("nonce", self.nonce),
            ("tag", self.tag),
        ]
        params.update({k: v for k, v in optional if v is not None})
        return InnerList([Item(c) for c in self.components], params)

    def serialized(self) -> str:
        """``serialize_member(self.inner_list())``, built directly: it runs per request."""
        out = [_components_text(self.components), f";created={serialize_bare(self.created)}"]
        if self.expires is not None:
            out.append(f";expires={serialize_bare(self.expires)}")
        for key, value in (("keyid", self.keyid), ("alg", self.alg), ("nonce", self.nonce)):
            if value is not None:
                out.append(f";{key}={serialize_bare(value)}")
        if self.tag is not None:
            out.append(f";tag={serialize_bare(self.tag)}")
        return "".join(out)


@functools.lru_cache(maxsize=64)
def _components_text(components: tuple[str, ...]) -> str:
    return "(" + " ".join(serialize_bare(c) for c in components) + ")"


@functools.lru_cache(maxsize=64)
def _component_labels(components: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(components)) != len(components):
        raise ValueError("signature: a component is covered twice")
    return tuple(serialize_bare(c) for c in components)


@dataclass(frozen=True)
class SignatureHeaders:
    """The two fields a signed request carries."""

    signature_input: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {"Signature-Input": self.signature_input, "Signature": self.signature}


def signature_base(message: RequestView, params: SignatureParams | InnerList) -> bytes:
    """The RFC 9421 signature base; KeyError when a covered component is missing.

    ``params`` is either ours or the parsed Signature-Input member of a received
    signature, whose parameters are then serialized in the order received.
    """
    member = params.inner_list() if isinstance(params, SignatureParams) else params
    return _base(message, member, serialize_member(member))


def _base(message: RequestView, member: InnerList, serialized: str) -> bytes:
    """The signature base of ``member``, whose serialization is ``serialized``."""
    names = [item.value for item in member.items]
    if len(set(names)) != len(names):
        raise ValueError("signature: a component is covered twice")
    lines = []
    for item in member.items:
        if not isinstance(item.value, str) or item.params:
            raise ValueError("signature: unsupported component identifier")
        lines.append(f"{serialize_bare(item.value)}: {message.component(item.value)}")
    lines.append(f'"@signature-params": {serialized}')
    return "\n".join(lines).encode("ascii")


def sign(
    message: RequestView, params: SignatureParams, key: SigningKey, *, label: str = LABEL
) -> SignatureHeaders:
    """Sign ``message`` with an Ed25519 :class:`SigningKey` whose kid is ``params.keyid``."""
    if key.algorithm != EDDSA or key.kid != params.keyid:
        raise ValueError("signature: needs an Ed25519 key matching keyid")
    if params.alg not in (None, ALG_ED25519):
        raise ValueError("signature: alg must be ed25519")
    serialized = params.serialized()  # once: it is both signed and sent
    labels = _component_labels(params.components)
    lines = [
        f"{label}: {message.component(c)}"
        for label, c in zip(labels, params.components, strict=True)
    ]
    lines.append(f'"@signature-params": {serialized}')
    signature = key.sign("\n".join(lines).encode("ascii"))
    return SignatureHeaders(
        signature_input=f"{label}={serialized}",
        signature=serialize_dictionary({label: Item(signature)}),
    )


@dataclass(frozen=True, slots=True)
class _Layout:
    """The constant text of one key's signatures over one covered set, built once.

    Only ``created`` and ``nonce`` change from one request to the next; the
    covered identifiers, ``keyid``, ``alg`` and ``tag`` are serialized here with
    the generic serializer, so the per-request text equals
    ``SignatureParams.serialized()`` byte for byte.
    """

    prefixes: tuple[str, ...]  # '"@method": ' and so on, one per component
    inner: str  # '("@method" ...);created='
    middle: str  # ';keyid="...";alg="ed25519";nonce="'
    tail: str  # '";tag="..."'

    @classmethod
    def build(cls, components: tuple[str, ...], keyid: str, tag: str) -> _Layout:
        labels = _component_labels(components)
        middle = f";keyid={serialize_bare(keyid)};alg={serialize_bare(ALG_ED25519)};nonce="
        return cls(
            prefixes=tuple(f"{label}: " for label in labels),
            inner=f"{_components_text(components)};created=",
            middle=middle + '"',
            tail=f'";tag={serialize_bare(tag)}',
        )


def _unsignable(values: Sequence[str]) -> bool:
    """True if any value holds CR, LF or non-ASCII (the checks of RequestView.component)."""
    joined = "".join(values)
    return "\r" in joined or "\n" in joined or not joined.isascii()


class UpstreamSigner:
    """Signs every forwarded request with the current upstream-signing key."""

    def __init__(
        self,
        *,
        signer: Callable[[], SigningKey],
        random_bytes: Callable[[int], bytes],
        label: str = LABEL,
    ) -> None:
        serialize_dictionary({label: Item(True)})  # refuses a label that is not an sf-key
        self._signer = signer
        self._random = random_bytes
        self._label = label
        self._layouts: dict[tuple[str, tuple[str, ...], str], _Layout] = {}
        self._checked: SigningKey | None = None  # the last key found to be Ed25519

    def sign(self, message: RequestView, *, now: float, streamed: bool) -> SignatureHeaders:
        """Signature fields for a request whose view already holds the identity field.

        Buffered (``streamed=False``): ``content-digest`` must be in the view.
        Streamed: ``content-length`` is covered when present, and the tag says
        the body is not covered.
        """
        components, tag = self._covered(message.fields, streamed=streamed)
        return self._sign([message.component(c) for c in components], components, tag, now=now)

    def sign_headers(
        self,
        *,
        method: str,
        authority: str,
        target: str,
        headers: CIMultiDict[str],
        now: float,
        streamed: bool,
        scheme: str = "http",
    ) -> SignatureHeaders:
        """:meth:`sign` of ``RequestView.build(...)`` of the same request, without the view.

        The forwarder's path: only the covered fields are read from ``headers``
        (case-insensitively, several lines joined as RFC 9421 says), and the
        upstream's authority is normalised once per value.
        """
        if not target.startswith("/"):
            raise ValueError("signature: target must be in origin form")
        components, tag = self._covered(headers, streamed=streamed)
        path, _, query = target.partition("?")
        values = [method, _authority_of(authority, scheme), path or "/", f"?{query}"]
        for name in components[len(values) :]:
            lines = headers.getall(name)
            if len(lines) == 1:
                values.append(lines[0].strip(" \t"))
            else:
                values.append(", ".join(line.strip(" \t") for line in lines))
        if _unsignable(values):
            raise ValueError("signature: component value is not signable")
        return self._sign(values, components, tag, now=now)

    @staticmethod
    def _covered(fields: Mapping[str, object], *, streamed: bool) -> tuple[tuple[str, ...], str]:
        """The covered components and the tag (see :meth:`sign`)."""
        if streamed:
            if "content-length" in fields:
                return _STREAMED_WITH_LENGTH, TAG_STREAM
            return UPSTREAM_COMPONENTS, TAG_STREAM
        if "content-digest" not in fields:
            raise ValueError("signature: a buffered request needs its content-digest field")
        return _BUFFERED, TAG_BUFFERED

    def _sign(
        self, values: Sequence[str], components: tuple[str, ...], tag: str, *, now: float
    ) -> SignatureHeaders:
        """Sign the component ``values`` (in ``components`` order) with the current key."""
        key = self._signer()
        layout = self._layout(key, components, tag)
        params = "".join(
            (
                layout.inner,
                str(int(now)),
                layout.middle,
                b64url_encode(self._random(16)),
                layout.tail,
            )
        )
        lines = [p + v for p, v in zip(layout.prefixes, values, strict=True)]
        lines.append('"@signature-params": ' + params)
        signature = key.sign("\n".join(lines).encode("ascii"))
        return SignatureHeaders(
            signature_input=f"{self._label}={params}",
            signature=f"{self._label}=:{binascii.b2a_base64(signature, newline=False).decode()}:",
        )

    def _layout(self, key: SigningKey, components: tuple[str, ...], tag: str) -> _Layout:
        """The layout for ``key``, which must be an Ed25519 key."""
        if key is not self._checked:  # the same key object until a rotation
            if key.algorithm != EDDSA:
                raise ValueError("signature: needs an Ed25519 key matching keyid")
            self._checked = key
        cache_key = (key.kid, components, tag)
        layout = self._layouts.get(cache_key)
        if layout is None:
            if len(self._layouts) >= 64:  # a few per key version; rotation adds some
                self._layouts.clear()
            layout = self._layouts[cache_key] = _Layout.build(components, key.kid, tag)
        return layout


@functools.lru_cache(maxsize=256)
def _authority_of(authority: str, scheme: str) -> str:
    """normalise_authority, once per upstream (the value comes from config, not clients)."""
    return normalise_authority(authority, scheme)
