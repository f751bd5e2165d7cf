"""ZeroMQ CURVE key files for the TCP control endpoint (fsd and fsctl share them).

A key file holds one Z85 key (40 characters) on one line: ``NAME.key`` the
public key, ``NAME.key_secret`` the secret key (mode 0600). Files in
ZeroMQ's certificate format (``public-key = "..."``, as written by
``zmq.auth.create_certificates`` or czmq's zcert) are read too, so existing
certificates can be reused. A secret key file is enough to know the public
key: it is derived from the secret.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import zmq

Z85_KEY = re.compile(r"^[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_CERT_LINE = re.compile(r'^\s*(public|secret)-key\s*=\s*"(.{40})"\s*$', re.MULTILINE)
PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"


class KeyFileError(ValueError):
    """A key file is missing, unreadable, malformed or too open; the message says which."""


def _read(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise KeyFileError(
            f"{what} {path} does not exist; create keys with 'fsctl keygen'"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror}") from None


def _parse(text: str, kind: str, path: Path, what: str) -> bytes:
    """The Z85 key of ``kind`` ('public' or 'secret') in a key or certificate file."""
    stripped = text.strip()
    if Z85_KEY.match(stripped):
        return stripped.encode("ascii")
    for found_kind, key in _CERT_LINE.findall(text):
        if found_kind == kind and Z85_KEY.match(key):
            return key.encode("ascii")
    raise KeyFileError(
        f"{what} {path} does not hold a Z85 {kind} key (one line of 40 characters, as "
        f"written by 'fsctl keygen')"
    )


def read_public_key(path: Path | str, what: str = "public key file") -> bytes:
    """The Z85 public key in ``path`` (a ``.key`` file or a certificate)."""
    path = Path(path)
    return _parse(_read(path, what), "public", path, what)


def read_secret_key(path: Path | str, what: str = "secret key file") -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a secret key file; refuses a file others can read."""
    path = Path(path)
    text = _read(path, what)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise KeyFileError(
            f"{what} {path} is readable by others (mode {mode:04o}); run 'chmod 600 {path}'"
        )
    secret = _parse(text, "secret", path, what)
    try:
        public = zmq.curve_public(secret)
    except zmq.ZMQError as exc:
        raise KeyFileError(f"{what} {path} holds an invalid secret key: {exc}") from None
    return public, secret


def load_allowed_clients(path: Path | str) -> dict[bytes, str]:
    """Allowed client public keys -> a name for logs (the file's stem).

    ``path`` is one public key file or a directory; in a directory every
    ``*.key`` file counts (secret key files and other files are ignored).
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.name.endswith(PUBLIC_SUFFIX))
    elif path.exists():
        files = [path]
    else:
        raise KeyFileError(
            f"curve_allowed_clients {path} does not exist; give a client public key file or a "
            f"directory of them (from 'fsctl keygen')"
        )
    keys: dict[bytes, str] = {}
    for file in files:
        keys[read_public_key(file, "client public key file")] = file.name.removesuffix(
            PUBLIC_SUFFIX
        )
    return keys


def write_keypair(out_dir: Path | str, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (0644) and ``NAME.key_secret`` (0600) in ``out_dir``; never overwrite."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    public_path, secret_path = out / f"{name}{PUBLIC_SUFFIX}", out / f"{name}{SECRET_SUFFIX}"
    for existing in (public_path, secret_path):
        if existing.exists():
            raise KeyFileError(
                f"{existing} already exists; remove it or choose another --name/--out"
            )
    public, secret = zmq.curve_keypair()
    # O_EXCL and the mode at creation: the secret is never readable by others, not even briefly.
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret.decode("ascii") + "\n")
    public_path.write_text(public.decode("ascii") + "\n")
    public_path.chmod(0o644)
    return public_path, secret_path
