"""Content fingerprints that tell "the same recording" from "a changed or different recording".

Trade-off: hashing a whole 2 GB video on every startup scan would make watching a big folder slow, so
files up to ``FULL_HASH_LIMIT`` (8 MiB) are hashed completely, and larger ones by their size plus the
first, middle and last 1 MiB (at most 3 MiB read, whatever the size). Any re-encode, trim, append or
re-download of an audio/video file changes its size or its header/trailer (container index, tags), so the
sample catches real changes; what it can miss is an in-place edit of the same length confined to
untouched middle bytes, which recorders and sync tools do not do. The scheme is part of the digest
(``full:``/``sampled:``) so the two kinds never compare equal by accident.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from whisperdesk.core.errors import FileDisappearedError, UnreadableFileError

CHUNK = 1024 * 1024
FULL_HASH_LIMIT = 8 * CHUNK


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int
    digest: str


def fingerprint_file(path: Path | str) -> Fingerprint:
    """Fingerprint ``path``; size and mtime come from the same open file the bytes are read from."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UnreadableFileError(path, f"{path} is not a regular file; add an audio or video file")
            digest = _digest(fh, st.st_size)
    except FileNotFoundError as exc:
        raise FileDisappearedError(path, f"file disappeared: {path} no longer exists") from exc
    except IsADirectoryError as exc:
        raise UnreadableFileError(path, f"{path} is a folder; add the audio or video files in it") from exc
    except PermissionError as exc:
        raise UnreadableFileError(
            path, f"cannot read {path}: permission denied; check the file's permissions"
        ) from exc
    except OSError as exc:
        raise UnreadableFileError(path, f"cannot read {path}: {exc.strerror or exc}") from exc
    return Fingerprint(st.st_size, st.st_mtime_ns, digest)


def _digest(fh: BinaryIO, size: int) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(size.to_bytes(8, "little"))
    if size <= FULL_HASH_LIMIT:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
        return "full:" + h.hexdigest()
    for offset in (0, (size - CHUNK) // 2, size - CHUNK):
        fh.seek(offset)
        h.update(fh.read(CHUNK))
    return "sampled:" + h.hexdigest()
