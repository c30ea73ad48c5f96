#!/usr/bin/python3
"""Known-answer vectors for t/unit/test_expkey.c, computed from the definitions
in mod_imgstore/imgstore_expkey.h with python3-cryptography, not with the module.
Run it and paste its output into the test when the definitions change (they must not)."""
import hashlib
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand


def ratchet(s):
    return HKDFExpand(algorithm=hashes.SHA256(), length=32, info=b"imgstore v2 ratchet").derive(s)


def extract(salt, ikm):
    # HKDF-Extract is HMAC(salt, IKM); python3-cryptography exposes it through HMAC.
    from cryptography.hazmat.primitives import hmac
    h = hmac.HMAC(salt, hashes.SHA256())
    h.update(ikm)
    return h.finalize()


def image_key(master, key_id, e, s_e, token):
    prk_m = extract(b"imgstore v2 extract", master)
    info = b"imgstore v2 key" + struct.pack(">HQ", key_id, e) + token
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=s_e, info=info).derive(prk_m)


def aad_v2(key_id, row_id, ctype, expires_at, e):
    t = ctype.encode()
    return bytes([2]) + struct.pack(">H", key_id) + row_id + bytes([len(t)]) + t + \
        struct.pack(">qQ", expires_at, e)


def state_file(period, e, s_e, lineage):
    body = b"IMGSXKEY" + struct.pack(">IIQ", 1, period, e) + s_e + lineage
    return body + hashlib.sha256(b"imgstore v2 state" + body).digest()


def c(name, b):
    return "static const unsigned char %s[%d] = {%s};" % (
        name, len(b), ", ".join("0x%02x" % x for x in b))


s0 = bytes(range(32))
chain = [s0]
for _ in range(1000):
    chain.append(ratchet(chain[-1]))
print(c("kat_s1", chain[1]))
print(c("kat_s2", chain[2]))
print(c("kat_s1000", chain[1000]))
print(c("kat_lineage", hashlib.sha256(b"imgstore v2 lineage" + s0).digest()))

master = b"\x11" * 32
token = b"\x5a" * 32
row_id = hashlib.sha256(b"imgstore v1 id" + token).digest()
key_id, e, period = 3, 3000000, 600
expires_at = e * period + 17
s_e = chain[7]
key = image_key(master, key_id, e, s_e, token)
nonce = bytes(range(100, 112))
ct = AESGCM(key).encrypt(nonce, b"expiry keys known answer", aad_v2(key_id, row_id, "image/png",
                                                                    expires_at, e))
print("/* the image key: %s */" % key.hex())
print(c("kat_nonce", nonce))
print(c("kat_ct", ct))
print("/* key_id %d, e %d, expires_at %d, S_e = S_7 of the chain above */" % (key_id, e, expires_at))
print(c("kat_file", state_file(period, 123456, chain[5], hashlib.sha256(
    b"imgstore v2 lineage" + s0).digest())))
