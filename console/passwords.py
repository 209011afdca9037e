"""Password hashing with scrypt (standard library), a random salt per password, constant-time checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# scrypt cost: 16 MiB of memory and about 50 ms per hash
N, R, P, KEY_BYTES = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 2**20, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """ "scrypt$n$r$p$salt$key" with a fresh 16-byte salt (console.password_policy decides what may be hashed)."""
    salt = secrets.token_bytes(16)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(_scrypt(password, salt, N, R, P))}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches the stored hash (compared in constant time)."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        candidate = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(candidate, base64.b64decode(key))


# checked against when the username is unknown, so that a wrong username takes as long as a wrong password
DECOY_HASH = f"scrypt${N}${R}${P}${_b64(b'0' * 16)}${_b64(b'0' * KEY_BYTES)}"
