"""Files the platform writes that hold source rows or anything derived from them: owner-only, and sealed.

Pure logic: no Dagster here. Dagster pickles every asset's value under `$DAGSTER_HOME/storage`; the first assets of
the chain hold source rows (names, rare values, outliers before the profiler codes them). Those pickles are
encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from the `cryptography` package) under a key that lives outside
`$DAGSTER_HOME`, so a copy of the Dagster home (a backup, a support bundle, a shared volume) holds no readable
source value. Every file is created with mode 0600 (owner read/write only) and written to a temporary name first.

The key: `SYNTH_STORAGE_KEY` (a Fernet key: 32 url-safe base64 bytes, e.g. from a secrets manager), else the file
`SYNTH_STORAGE_KEY_FILE`, else `$XDG_CONFIG_HOME/synth_platform/storage.key` (`~/.config/…`), created with mode
0600 on first use. A later run with another key cannot read the sealed values of earlier runs: it says so and
what to re-run.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

KEY_ENV = "SYNTH_STORAGE_KEY"
KEY_FILE_ENV = "SYNTH_STORAGE_KEY_FILE"
PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


class SealedStorageError(RuntimeError):
    """A sealed file cannot be opened (another key, or damaged); the message says what to do."""


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "synth_platform" / "storage.key"


def key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or default_key_file())


def _key() -> bytes:
    given = os.environ.get(KEY_ENV, "").strip()
    if given:
        return given.encode("ascii")
    return _key_from_file(str(key_file()))


@lru_cache(maxsize=8)
def _key_from_file(path_text: str) -> bytes:
    path = Path(path_text)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
        try:
            write_private_bytes(path, Fernet.generate_key(), exclusive=True)
        except FileExistsError:  # another process made it first: use theirs
            pass
    return path.read_bytes().strip()


def _fernet() -> Fernet:
    key = _key()
    try:
        return Fernet(key)
    except ValueError:
        raise SealedStorageError(
            f"The storage key ({KEY_ENV} or {key_file()}) is not a Fernet key (32 url-safe base64-encoded bytes); "
            "make one with: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None


def seal(data: bytes) -> bytes:
    return _fernet().encrypt(data)


def unseal(token: bytes, what: str = "a sealed file") -> bytes:
    try:
        return _fernet().decrypt(token)
    except InvalidToken:
        raise SealedStorageError(
            f"Cannot open {what}: it was sealed with another storage key than the one in use now "
            f"({KEY_ENV} or {key_file()}), or it is damaged. Restore that key, or materialize the chain again "
            "from source_sample."
        ) from None


def private_directory(path: Path) -> Path:
    """Create `path` (and parents) if missing and make it owner-only (0700), so nothing under it (whatever its
    own mode: Dagster's compute logs, MLflow's database, Great Expectations' files) is open to other users. A
    directory another user owns is left alone (chmod would fail); returns `path`."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    if path.stat().st_uid == os.geteuid() and path.stat().st_mode & 0o077:
        os.chmod(path, PRIVATE_DIR_MODE)
    return path


def write_private_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> Path:
    """Write `data` to `path` with mode 0600, through a temporary file in the same folder (no half-written file,
    never a moment of wider permissions). `exclusive` refuses to replace an existing file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, PRIVATE_FILE_MODE)
        if exclusive:
            os.link(tmp, path)  # fails with FileExistsError when the file exists
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def write_private_text(path: Path, text: str) -> Path:
    return write_private_bytes(path, text.encode("utf-8"))
