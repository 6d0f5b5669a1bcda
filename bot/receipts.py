"""Case codes and secret receipts: what a reporter holds instead of an identity.

The case code names a case (it is shown to committees); the receipt proves that whoever holds
it is the reporter. Only a salted scrypt hash of the receipt is stored.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor

# No 0/O, 1/I/L or U: a case code is read off a phone screen and typed on another.
CASE_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
CASE_CODE_LENGTH = 5
CASE_CODE_PREFIX = "MV-"
# Crockford's base32: 32 symbols, 5 bits each; 16 symbols = 80 bits of entropy.
RECEIPT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
RECEIPT_LENGTH = 16
RECEIPT_GROUP = 4

# An 80-bit random secret cannot be guessed even against a fast hash (2^80 tries); scrypt makes
# each guess against a stolen database cost ~13 ms and 4 MiB besides. Dearer settings bought no
# safety and capped how many reports per second the bot can take (see benchmarks/report_flow.py).
SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN = 2**12, 8, 1, 32
_SCRYPT_MAXMEM = 64 * 1024 * 1024
_CONFUSABLES = str.maketrans({"O": "0", "I": "1", "L": "1", "U": "V"})


def new_case_code() -> str:
    return CASE_CODE_PREFIX + "".join(secrets.choice(CASE_CODE_ALPHABET) for _ in range(CASE_CODE_LENGTH))


def new_receipt() -> str:
    symbols = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_LENGTH))
    return "-".join(symbols[i : i + RECEIPT_GROUP] for i in range(0, RECEIPT_LENGTH, RECEIPT_GROUP))


def _compact(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def normalize_case_code(text: str) -> str | None:
    """'mv 7k3q9', 'MV-7K3Q9', '7k3q9' → 'MV-7K3Q9'; None when it cannot be a case code."""
    compact = _compact(text)
    if compact.startswith("MV"):
        compact = compact[2:]
    if len(compact) != CASE_CODE_LENGTH or any(ch not in CASE_CODE_ALPHABET for ch in compact):
        return None
    return CASE_CODE_PREFIX + compact


def normalize_receipt(text: str) -> str | None:
    """Spaces, dashes, lower case and look-alike letters (O for 0, I or L for 1) are forgiven."""
    compact = _compact(text).translate(_CONFUSABLES)
    if len(compact) != RECEIPT_LENGTH or any(ch not in RECEIPT_ALPHABET for ch in compact):
        return None
    return "-".join(compact[i : i + RECEIPT_GROUP] for i in range(0, RECEIPT_LENGTH, RECEIPT_GROUP))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _scrypt(receipt: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(receipt.encode(), salt=salt, n=n, r=r, p=p, dklen=dklen, maxmem=_SCRYPT_MAXMEM)


def hash_receipt(receipt: str) -> str:
    """Self-describing 'scrypt$N$r$p$salt$hash', so the cost can be raised later."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(receipt, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, SCRYPT_DKLEN)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def receipt_matches(receipt: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        raise ValueError(f"unknown receipt hash scheme {scheme!r}")
    expected = _unb64(digest)
    actual = _scrypt(receipt, _unb64(salt), int(n), int(r), int(p), len(expected))
    return hmac.compare_digest(actual, expected)


# Checked against when a case code does not exist, so that a wrong code costs the same time
# as a wrong receipt and the answer's timing does not reveal which codes exist.
_DECOY_HASH = hash_receipt(new_receipt())


# scrypt runs outside the event loop, on one thread per core: more threads hash no faster, and
# each holds its 4 MiB working memory (and its allocator's arena) for the life of the process.
_HASHING = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="receipts")


async def _hashing(function, *args):
    return await asyncio.get_running_loop().run_in_executor(_HASHING, function, *args)


async def hash_receipt_async(receipt: str) -> str:
    return await _hashing(hash_receipt, receipt)


async def receipt_matches_async(receipt: str, stored: str | None) -> bool:
    if stored is None:
        await _hashing(receipt_matches, receipt, _DECOY_HASH)
        return False
    return await _hashing(receipt_matches, receipt, stored)


_MV_CODE = re.compile(r"\bMV[\s\-_.]?([0-9A-Z]{5})\b", re.IGNORECASE)


def split_code_and_receipt(text: str) -> tuple[str | None, str | None]:
    """Find a case code and/or a receipt in what a reporter typed or pasted, in either order."""
    code = None
    match = _MV_CODE.search(text)
    if match:
        code = normalize_case_code(match.group(1))
        text = text[: match.start()] + " " + text[match.end() :]
    elif (first := text.split(maxsplit=1)) and len(first[0]) == CASE_CODE_LENGTH:
        code = normalize_case_code(first[0])
        if code:
            text = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    return code, normalize_receipt(text)
