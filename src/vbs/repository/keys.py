"""Key slots and project keys.

The repository has one random 256-bit *master key*. It is never stored in the
clear: each *key slot* (``keys/<slot-id>``) holds it wrapped (AES-256-GCM) by a
key-encryption key derived either from a passphrase with argon2id (parameters
and salt stored in the slot) or from a key file (BLAKE3 derive-key of the
file's bytes). Opening tries every slot; none opening means a wrong passphrase
or key file.

Each project has two keys: a *data key* (AES-256-GCM for its blobs and sealed
objects) and an *id key* (BLAKE3 key for its chunk ids). They are derived from
the master key and the project name (BLAKE3 derive-key), so that two processes
creating the same project at once agree without any locking, and stored sealed
at ``projects/<p>/key``; when that object exists it is authoritative (format v1
never rotates it, a later version may).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import uuid
from dataclasses import dataclass

import blake3
from argon2.low_level import Type, hash_secret_raw
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vbs.errors import CorruptObject, WrongPassword
from vbs.repository import format as fmt

__all__ = [
    "KdfParams",
    "ProjectKeys",
    "derive_project_keys",
    "keyfile_kek",
    "make_slot",
    "open_slot",
    "project_keys_plaintext",
    "open_project_keys",
]

SLOT_MAGIC = "vbs-key-slot"
SLOT_AAD = b"vbs key slot v1:"


@dataclass(frozen=True)
class KdfParams:
    """argon2id parameters; defaults follow RFC 9106's second recommendation."""

    time_cost: int = 3
    memory_cost_kib: int = 64 * 1024
    parallelism: int = 2


@dataclass(frozen=True)
class ProjectKeys:
    data_key: bytes
    id_key: bytes


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode(), validate=True)


def passphrase_kek(passphrase: str, salt: bytes, params: KdfParams) -> bytes:
    return hash_secret_raw(
        passphrase.encode(),
        salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_cost_kib,
        parallelism=params.parallelism,
        hash_len=fmt.KEY_SIZE,
        type=Type.ID,
    )


def keyfile_kek(key_file_bytes: bytes) -> bytes:
    if len(key_file_bytes) < 16:
        raise ValueError("key file must hold at least 16 bytes of secret")
    return blake3.blake3(key_file_bytes, derive_key_context="vbs 2026 key file kek v1").digest()


def make_slot(
    master_key: bytes,
    repo_id: str,
    *,
    passphrase: str | None = None,
    key_file_bytes: bytes | None = None,
    kdf: KdfParams | None = None,
) -> tuple[str, bytes]:
    """Wrap the master key into a new slot; returns (slot id, object bytes)."""
    doc: dict[str, object] = {
        "magic": SLOT_MAGIC,
        "version": fmt.FORMAT_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(),
    }
    if passphrase is not None:
        params = kdf or KdfParams()
        salt = os.urandom(16)
        kek = passphrase_kek(passphrase, salt, params)
        doc["kind"] = "passphrase"
        doc["kdf"] = {
            "name": "argon2id",
            "time_cost": params.time_cost,
            "memory_cost_kib": params.memory_cost_kib,
            "parallelism": params.parallelism,
            "salt": _b64(salt),
        }
    elif key_file_bytes is not None:
        kek = keyfile_kek(key_file_bytes)
        doc["kind"] = "keyfile"
    else:
        raise ValueError("a passphrase or a key file is required")
    nonce = os.urandom(fmt.NONCE_SIZE)
    doc["nonce"] = _b64(nonce)
    doc["wrapped"] = _b64(AESGCM(kek).encrypt(nonce, master_key, SLOT_AAD + repo_id.encode()))
    return uuid.uuid4().hex, json.dumps(doc, indent=1).encode()


def open_slot(
    data: bytes,
    repo_id: str,
    *,
    passphrase: str | None = None,
    key_file_bytes: bytes | None = None,
) -> bytes:
    """Unwrap the master key from one slot; WrongPassword if it does not open."""
    try:
        doc = json.loads(data)
        if doc.get("magic") != SLOT_MAGIC or doc.get("version") != fmt.FORMAT_VERSION:
            raise CorruptObject("key slot: bad magic or version")
        kind = doc["kind"]
        nonce = _unb64(doc["nonce"])
        wrapped = _unb64(doc["wrapped"])
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptObject(f"key slot unreadable: {exc}") from None
    if kind == "passphrase":
        if passphrase is None:
            raise WrongPassword("this key slot needs a passphrase")
        k = doc["kdf"]
        params = KdfParams(k["time_cost"], k["memory_cost_kib"], k["parallelism"])
        kek = passphrase_kek(passphrase, _unb64(k["salt"]), params)
    elif kind == "keyfile":
        if key_file_bytes is None:
            raise WrongPassword("this key slot needs a key file")
        kek = keyfile_kek(key_file_bytes)
    else:
        raise CorruptObject(f"key slot: unknown kind {kind!r}")
    try:
        return AESGCM(kek).decrypt(nonce, wrapped, SLOT_AAD + repo_id.encode())
    except InvalidTag:
        raise WrongPassword("wrong passphrase or key file") from None


def derive_project_keys(master_key: bytes, project: str) -> ProjectKeys:
    def sub(purpose: str) -> bytes:
        h = blake3.blake3(derive_key_context=f"vbs 2026 project {purpose} key v1")
        h.update(master_key + b"\0" + project.encode())
        return h.digest()

    return ProjectKeys(data_key=sub("data"), id_key=sub("chunk-id"))


def project_keys_plaintext(keys: ProjectKeys, project: str) -> bytes:
    """Plaintext of ``projects/<p>/key``: data key, id key, project name."""
    return keys.data_key + keys.id_key + project.encode()


def open_project_keys(plaintext: bytes, project: str) -> ProjectKeys:
    if len(plaintext) < 2 * fmt.KEY_SIZE or plaintext[2 * fmt.KEY_SIZE :] != project.encode():
        raise CorruptObject(f"project key object of {project!r} malformed")
    return ProjectKeys(plaintext[: fmt.KEY_SIZE], plaintext[fmt.KEY_SIZE : 2 * fmt.KEY_SIZE])
