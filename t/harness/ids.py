"""What the module makes of a token: the hash in the URL (the token, base64url) and the
id of its row (a hash of the token)."""
import base64
import hashlib
import re

HASH_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def token_of(hash_):
    """The 32 raw token bytes a hash (base64url, no padding) stands for."""
    return base64.urlsafe_b64decode(hash_ + "=")


def row_id(hash_):
    """The lookup id of an image's row: SHA-256("imgstore v1 id" || token)."""
    return hashlib.sha256(b"imgstore v1 id" + token_of(hash_)).digest()


def sql_id(hash_):
    """The row id as an SQL bytea literal, for WHERE id = ... on one's own row."""
    return "'\\x%s'::bytea" % row_id(hash_).hex()
