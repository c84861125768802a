"""The ADB wire protocol, device side: message framing, RSA auth check, shell v2 and sync framing.

Written from AOSP's protocol.txt / SYNC.TXT / shell_protocol.h. Used by the
simulated phone; nothing here is imported by devicekit itself.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import struct

# message commands (little-endian ASCII)
CMDS = {name: struct.unpack("<I", name)[0] for name in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"CLSE", b"WRTE", b"SYNC", b"STLS")}
NAMES = {v: k for k, v in CMDS.items()}
HEADER = struct.Struct("<6I")
A_VERSION = 0x01000000
A_VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD = 256 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3

# shell protocol v2 packet ids (system/core/adb/shell_protocol.h)
SHELL_STDIN, SHELL_STDOUT, SHELL_STDERR, SHELL_EXIT, SHELL_CLOSE_STDIN, SHELL_WINDOW = 0, 1, 2, 3, 4, 5

# PKCS#1 v1.5 DigestInfo prefix for SHA-1 (what RSA_sign(NID_sha1, ...) and adb-shell's signers produce)
SHA1_DIGESTINFO = bytes.fromhex("3021300906052b0e03021a05000414")
ANDROID_PUBKEY = struct.Struct("<II256s256sI")


class Disconnected(Exception):
    pass


def checksum(data: bytes) -> int:
    return sum(data) & 0xFFFFFFFF


def pack(cmd: bytes, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    c = CMDS[cmd]
    return HEADER.pack(c, arg0, arg1, len(data), checksum(data), c ^ 0xFFFFFFFF) + data


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise Disconnected("peer closed the connection")
        buf += chunk
    return bytes(buf)


def read_message(sock: socket.socket, check: bool = True) -> tuple[bytes, int, int, bytes]:
    cmd, arg0, arg1, length, csum, magic = HEADER.unpack(recv_exact(sock, HEADER.size))
    if cmd not in NAMES or magic != cmd ^ 0xFFFFFFFF:
        raise Disconnected(f"bad message header {cmd:#x}")
    if length > 16 * 1024 * 1024:
        raise Disconnected(f"message too long ({length})")
    data = recv_exact(sock, length) if length else b""
    if check and checksum(data) != csum:
        raise Disconnected("bad payload checksum")
    return NAMES[cmd], arg0, arg1, data


def parse_pubkey(text: bytes | str) -> tuple[int, int]:
    """Android's RSAPublicKey (base64, optionally followed by ' user@host') -> (n, e)."""
    if isinstance(text, str):
        text = text.encode()
    b64 = text.strip(b"\0").split()[0]
    words, _n0inv, modulus, _rr, e = ANDROID_PUBKEY.unpack(base64.b64decode(b64))
    if words != 64:
        raise ValueError(f"unexpected RSA modulus size {words} words")
    return int.from_bytes(modulus, "little"), e


def verify_signature(pub: tuple[int, int], token: bytes, signature: bytes) -> bool:
    """RSA PKCS#1 v1.5 with the SHA-1 DigestInfo over the raw 20-byte token (adb's auth)."""
    n, e = pub
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    m = pow(int.from_bytes(signature, "big"), e, n).to_bytes(k, "big")
    expected_tail = b"\x00" + SHA1_DIGESTINFO + token
    pad_len = k - len(expected_tail) - 2
    return m == b"\x00\x01" + b"\xff" * pad_len + expected_tail


def key_fingerprint(pub: tuple[int, int]) -> str:
    return hashlib.sha256(pub[0].to_bytes(256, "big")).hexdigest()[:16]


def shell_packet(kind: int, data: bytes) -> bytes:
    return struct.pack("<BI", kind, len(data)) + data


class ShellV2Parser:
    """Splits the host's shell-v2 byte stream into (id, payload) packets."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= 5:
            kind, length = struct.unpack_from("<BI", self.buf)
            if len(self.buf) < 5 + length:
                break
            out.append((kind, bytes(self.buf[5 : 5 + length])))
            del self.buf[: 5 + length]
        return out


def sync_header(ident: bytes, value: int) -> bytes:
    return ident + struct.pack("<I", value)
