"""The AMD SEV-SNP attestation report: its fixed 1184-byte layout, parsed without trusting it.

Rules (AMD SEV-SNP firmware ABI, "ATTESTATION_REPORT structure"):
- The report is exactly 0x4A0 = 1184 bytes; every integer is little-endian.
- The VCEK's ECDSA P-384/SHA-384 signature covers bytes 0x000..0x29F. R and S
  are 72-byte little-endian integers at 0x2A0 and 0x2E8; a P-384 value fits in
  48 bytes, so their top 24 bytes and the rest of the signature area
  (0x330..0x4A0) are unsigned and must be zero: nothing outside the signed
  bytes may vary, so any flipped bit is refused.
- Parsing checks shape only: the size, VERSION >= 2 (2..5 share this layout),
  SIGNATURE_ALGO 1 (ECDSA P-384 with SHA-384), the signing key named as the
  VCEK (bits 2..4 at 0x48 are 0; version 2 reports keep them zero). Nothing
  parsed here may be trusted until the verifier has checked the signature.
- TCB_VERSION on Milan and Genoa: byte 0 boot loader, byte 1 TEE, bytes 2..5
  reserved, byte 6 SNP, byte 7 microcode.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from tee.errors import EvidenceRefused

REPORT_SIZE = 0x4A0
SIGNED_SIZE = 0x2A0
_COMPONENT = 72  # bytes of R and of S as stored
_P384_BYTES = 48
_UNSIGNED_TAIL = slice(SIGNED_SIZE + 2 * _COMPONENT, REPORT_SIZE)
ECDSA_P384_SHA384 = 1
DEBUG_BIT = 1 << 19  # GUEST_POLICY.DEBUG
_SIGNING_KEY_SHIFT, _SIGNING_KEY_MASK, SIGNING_KEY_VCEK = 2, 0b111, 0

# version, guest_svn, policy, family_id, image_id, vmpl, signature_algo,
# current_tcb, platform_info, key flags; then report_data at 0x50.
_HEAD = struct.Struct("<IIQ16s16sII8sQI")


@dataclass(frozen=True, slots=True)
class Tcb:
    """One TCB_VERSION: the security patch levels the VCEK is derived from."""

    raw: bytes  # the 8 bytes as carried

    @property
    def bootloader(self) -> int:
        """Boot loader SPL (byte 0)."""
        return self.raw[0]

    @property
    def tee(self) -> int:
        """PSP OS (TEE) SPL (byte 1)."""
        return self.raw[1]

    @property
    def snp(self) -> int:
        """SNP firmware SPL (byte 6)."""
        return self.raw[6]

    @property
    def microcode(self) -> int:
        """CPU microcode SPL (byte 7)."""
        return self.raw[7]

    def components(self) -> dict[str, int]:
        """The four named components, as the policy's ``min_tcb`` names them."""
        return {
            "bootloader": self.bootloader,
            "tee": self.tee,
            "snp": self.snp,
            "microcode": self.microcode,
        }

    def __str__(self) -> str:
        return f"bl={self.bootloader} tee={self.tee} snp={self.snp} ucode={self.microcode}"


@dataclass(frozen=True, slots=True)
class SnpReport:
    """A parsed, not yet verified, attestation report."""

    version: int
    guest_svn: int
    policy: int
    family_id: bytes
    image_id: bytes
    vmpl: int
    signature_algo: int
    current_tcb: Tcb
    platform_info: int
    author_key_en: bool
    signing_key: int
    report_data: bytes  # 64 B at 0x50
    measurement: bytes  # 48 B at 0x90
    host_data: bytes  # 32 B at 0xC0
    id_key_digest: bytes  # 48 B at 0xE0
    author_key_digest: bytes  # 48 B at 0x110
    report_id: bytes  # 32 B at 0x140
    report_id_ma: bytes  # 32 B at 0x160
    reported_tcb: Tcb  # at 0x180: the TCB the VCEK is issued for
    chip_id: bytes  # 64 B at 0x1A0
    committed_tcb: Tcb  # at 0x1E0
    launch_tcb: Tcb  # at 0x1F0
    signed: bytes  # bytes 0x000..0x29F, what the signature covers
    r: int
    s: int

    @property
    def debug(self) -> bool:
        """The guest policy allows a debugger (the host can read guest memory)."""
        return bool(self.policy & DEBUG_BIT)


def parse_report(data: bytes) -> SnpReport:
    """The report's fields, or EvidenceRefused("format") when its shape is wrong."""
    if len(data) != REPORT_SIZE:
        raise EvidenceRefused("format", f"sev-snp report is {len(data)} bytes, not {REPORT_SIZE}")
    head = _HEAD.unpack_from(data, 0)
    version, svn, policy, family, image, vmpl, algo, current, platform, flags = head
    if version < 2:
        raise EvidenceRefused("format", f"sev-snp report version {version} is not supported")
    if algo != ECDSA_P384_SHA384:
        raise EvidenceRefused("format", f"sev-snp signature algorithm {algo} is not ecdsa p-384")
    signing_key = (flags >> _SIGNING_KEY_SHIFT) & _SIGNING_KEY_MASK
    if signing_key != SIGNING_KEY_VCEK:
        raise EvidenceRefused("format", "sev-snp report is not signed by a vcek")
    r_le = data[SIGNED_SIZE : SIGNED_SIZE + _COMPONENT]
    s_le = data[SIGNED_SIZE + _COMPONENT : SIGNED_SIZE + 2 * _COMPONENT]
    unsigned = r_le[_P384_BYTES:] + s_le[_P384_BYTES:] + data[_UNSIGNED_TAIL]
    if any(unsigned):
        raise EvidenceRefused("format", "sev-snp signature area has non-zero reserved bytes")
    return SnpReport(
        version=version,
        guest_svn=svn,
        policy=policy,
        family_id=family,
        image_id=image,
        vmpl=vmpl,
        signature_algo=algo,
        current_tcb=Tcb(current),
        platform_info=platform,
        author_key_en=bool(flags & 1),
        signing_key=signing_key,
        report_data=data[0x50:0x90],
        measurement=data[0x90:0xC0],
        host_data=data[0xC0:0xE0],
        id_key_digest=data[0xE0:0x110],
        author_key_digest=data[0x110:0x140],
        report_id=data[0x140:0x160],
        report_id_ma=data[0x160:0x180],
        reported_tcb=Tcb(data[0x180:0x188]),
        chip_id=data[0x1A0:0x1E0],
        committed_tcb=Tcb(data[0x1E0:0x1E8]),
        launch_tcb=Tcb(data[0x1F0:0x1F8]),
        signed=data[:SIGNED_SIZE],
        r=int.from_bytes(r_le, "little"),
        s=int.from_bytes(s_le, "little"),
    )
