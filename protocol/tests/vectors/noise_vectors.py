#!/usr/bin/env python3
"""Known-answer vectors for protocol/tests/known_answers.rs.

An implementation of WireGuard's handshake written from the whitepaper
(sections 5.4.2 to 5.4.6), sharing no code with the `protocol` crate: BLAKE2s
and HMAC from Python's hashlib/hmac, X25519 and ChaCha20-Poly1305 from the
`cryptography` package (OpenSSL). It prints the Rust constants that the test
pins; rerun it to reproduce them:

    python3 protocol/tests/vectors/noise_vectors.py   # needs the cryptography package
                                                      # (Debian: python3-cryptography)

The fixed inputs (keys, PSK, indexes, timestamp, payloads) are defined here
and repeated in the test; the outputs were produced once and pasted there.
"""

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

CONSTRUCTION = b"Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
IDENTIFIER = b"WireGuard v1 zx2c4 Jason@zx2c4.com"
LABEL_MAC1 = b"mac1----"

# The fixed inputs.
I_STATIC = bytes(range(0x00, 0x20))
R_STATIC = bytes(range(0x40, 0x60))
I_EPHEMERAL = bytes(range(0x80, 0xA0))
R_EPHEMERAL = bytes(range(0xC0, 0xE0))
PSK = bytes(range(0xA0, 0xC0))
I_INDEX = 0x11223344
R_INDEX = 0x55667788
UNIX_SECS = 1_700_000_000
UNIX_NANOS = 123_456_789
# Data payloads (already padded to a multiple of 16, section 5.4.6).
I_TO_R_PAYLOAD = bytes(range(0x00, 0x20))
R_TO_I_PAYLOAD = b""  # a keepalive


def HASH(*parts):
    h = hashlib.blake2s()
    for p in parts:
        h.update(p)
    return h.digest()


def MAC(key, data):
    return hashlib.blake2s(data, digest_size=16, key=key).digest()


def HMAC(key, data):
    return hmac.new(key, data, hashlib.blake2s).digest()


def KDF(n, key, data):
    """HKDF with HMAC-BLAKE2s (section 5.4 / RFC 5869), n outputs."""
    prk = HMAC(key, data)
    out, prev = [], b""
    for i in range(1, n + 1):
        prev = HMAC(prk, prev + bytes([i]))
        out.append(prev)
    return out


def pub(private):
    return (
        X25519PrivateKey.from_private_bytes(private)
        .public_key()
        .public_bytes(Encoding.Raw, PublicFormat.Raw)
    )


def DH(private, public):
    return X25519PrivateKey.from_private_bytes(private).exchange(
        X25519PublicKey.from_public_bytes(public)
    )


def AEAD(key, counter, plaintext, aad):
    nonce = b"\x00" * 4 + struct.pack("<Q", counter)
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def tai64n(secs, nanos):
    return struct.pack(">QI", (1 << 62) + 10 + secs, nanos)


def handshake():
    s_i_pub, s_r_pub = pub(I_STATIC), pub(R_STATIC)
    # Section 5.4.2, the initiator.
    c = HASH(CONSTRUCTION)
    h = HASH(c, IDENTIFIER)
    h = HASH(h, s_r_pub)
    e_i_pub = pub(I_EPHEMERAL)
    (c,) = KDF(1, c, e_i_pub)
    h = HASH(h, e_i_pub)
    c, k = KDF(2, c, DH(I_EPHEMERAL, s_r_pub))
    enc_static = AEAD(k, 0, s_i_pub, h)
    h = HASH(h, enc_static)
    c, k = KDF(2, c, DH(I_STATIC, s_r_pub))
    enc_ts = AEAD(k, 0, tai64n(UNIX_SECS, UNIX_NANOS), h)
    h = HASH(h, enc_ts)
    init = struct.pack("<BxxxI", 1, I_INDEX) + e_i_pub + enc_static + enc_ts
    init += MAC(HASH(LABEL_MAC1, s_r_pub), init)  # section 5.4.4
    init += b"\x00" * 16  # mac2: no cookie
    # Section 5.4.3, the responder.
    e_r_pub = pub(R_EPHEMERAL)
    (c,) = KDF(1, c, e_r_pub)
    h = HASH(h, e_r_pub)
    (c,) = KDF(1, c, DH(R_EPHEMERAL, e_i_pub))
    (c,) = KDF(1, c, DH(R_EPHEMERAL, s_i_pub))
    c, t, k = KDF(3, c, PSK)
    h = HASH(h, t)
    enc_nothing = AEAD(k, 0, b"", h)
    resp = struct.pack("<BxxxII", 2, R_INDEX, I_INDEX) + e_r_pub + enc_nothing
    resp += MAC(HASH(LABEL_MAC1, s_i_pub), resp)
    resp += b"\x00" * 16
    # Section 5.4.5: the initiator sends with the first key.
    i_send, r_send = KDF(2, c, b"")
    # Section 5.4.6: the first data message each way (counter 0).
    i_to_r = struct.pack("<BxxxIQ", 4, R_INDEX, 0) + AEAD(i_send, 0, I_TO_R_PAYLOAD, b"")
    r_to_i = struct.pack("<BxxxIQ", 4, I_INDEX, 0) + AEAD(r_send, 0, R_TO_I_PAYLOAD, b"")
    return init, resp, i_to_r, r_to_i


def rust(name, data):
    hexed = data.hex()
    lines = [hexed[i : i + 64] for i in range(0, len(hexed), 64)]
    if len(lines) == 1:
        return f'const {name}: &str = "{hexed}";'
    body = "".join(f'    "{line}",\n' for line in lines)
    return f"const {name}: &str = concat!(\n{body});"


def main():
    init, resp, i_to_r, r_to_i = handshake()
    assert (len(init), len(resp)) == (148, 92)
    print(rust("INITIATION", init))
    print(rust("RESPONSE", resp))
    print(rust("DATA_I_TO_R", i_to_r))
    print(rust("DATA_R_TO_I", r_to_i))
    # HMAC-BLAKE2s and HKDF (KDF3) on their own.
    key = bytes(range(0x20, 0x40))
    print(rust("HMAC_KEY_20_3F_MSG_HI_THERE", HMAC(key, b"Hi There")))
    print(rust("HMAC_KEY_20_3F_MSG_EMPTY", HMAC(key, b"")))
    for i, out in enumerate(KDF(3, key, b"WireGuard KDF input")):
        print(rust(f"KDF3_KEY_20_3F_OUT{i + 1}", out))
    for i, out in enumerate(KDF(3, key, b"")):
        print(rust(f"KDF3_KEY_20_3F_EMPTY_OUT{i + 1}", out))


if __name__ == "__main__":
    main()
