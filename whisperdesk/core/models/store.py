"""Models on this disk: downloaded named models, their manifests, local folders, and removal.

A downloaded model lives in ``<models_dir>/downloads/<name>/`` next to ``manifest.json``, which records the
size and hub checksum of every file. The folder appears only when every file has verified, so "installed"
means "complete and checked". Models fetched by earlier versions through faster-whisper's own cache
(``models--Systran--…``) are still found and used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.models.integrity import sha256_of

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
REQUIRED_FILES = ("model.bin", "config.json", "tokenizer.json")
_CHUNK = 4 << 20
# Files up to this size are hashed before every load (config, tokenizer, vocabulary: milliseconds); larger
# ones (model.bin, up to 3 GB) by their size there, and hashed by `models verify`.
HASH_BEFORE_LOAD = 16 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One file of a hub repository: its size and the checksum the hub publishes for it."""

    name: str
    size: int
    sha256: str | None  # Git LFS files (model.bin)
    git_sha1: str | None  # small files kept in git: the git blob id

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256, "git_sha1": self.git_sha1}


@dataclass(frozen=True)
class Manifest:
    name: str
    repo_id: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        data = {"name": self.name, "repo_id": self.repo_id, "commit": self.commit}
        return json.dumps({**data, "files": [f.to_dict() for f in self.files]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        files = tuple(RemoteFile(**f) for f in data["files"])
        return cls(data["name"], data["repo_id"], data["commit"], files)


def safe_name(name: str) -> str:
    return name.replace("/", "--")


def downloads_dir(models_dir: Path) -> Path:
    return Path(models_dir) / "downloads"


def model_folder(name: str, models_dir: Path) -> Path:
    return downloads_dir(models_dir) / safe_name(name)


def staging_folder(name: str, models_dir: Path) -> Path:
    return downloads_dir(models_dir) / f"{safe_name(name)}.partial"


def _hf_cache_snapshot(repo_id: str, models_dir: Path) -> Path | None:
    """A complete snapshot in faster-whisper's own cache layout (older WhisperDesk versions used it)."""
    snapshots = Path(models_dir) / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    for snap in sorted(snapshots.iterdir()):
        if not local_folder_problems(snap):
            return snap
    return None


def installed_path(name: str, models_dir: Path, repo_id: str | None = None) -> Path | None:
    """The folder of a complete, verified download of ``name``, or None."""
    folder = model_folder(name, models_dir)
    manifest = read_manifest(folder)
    if manifest is not None and not damaged_files(folder, manifest) and not local_folder_problems(folder):
        return folder
    return _hf_cache_snapshot(repo_id, models_dir) if repo_id else None


def damaged_files(folder: Path, manifest: Manifest, *, full: bool = False) -> list[str]:
    """Files of a download that are missing or differ from its manifest (the hash list the hub published).

    Before a load (``full=False``) large files are checked by size, the rest by hash; ``full`` hashes all.
    """
    bad = []
    for remote in manifest.files:
        path = folder / remote.name
        if full or remote.size <= HASH_BEFORE_LOAD:
            intact = file_matches(path, remote)
        else:
            intact = path.is_file() and path.stat().st_size == remote.size
        if not intact:
            bad.append(remote.name)
    return bad


def damaged_download(name: str, models_dir: Path) -> list[str]:
    """The damaged files of a finished download of ``name`` (before a load); [] when there is none or it is
    intact. A damaged download is not "not downloaded": the fix is to download it again, not to wait."""
    folder = model_folder(name, models_dir)
    manifest = read_manifest(folder)
    return [] if manifest is None else damaged_files(folder, manifest)


def damage_message(name: str, bad: list[str]) -> str:
    """One wording for `models verify` and for a job that cannot load the model."""
    verb = "is" if len(bad) == 1 else "are"
    return (
        f"The downloaded model {name} is damaged: {', '.join(bad)} {verb} cut off or changed since it was "
        f"downloaded. Download it again: whisperdesk models remove {name}, then whisperdesk models download "
        f"{name} (in the window: Tools → Models…)."
    )


def partial_bytes(name: str, models_dir: Path) -> int:
    """Bytes already on disk from an interrupted download (what a resume will not fetch again)."""
    staging = staging_folder(name, models_dir)
    if not staging.is_dir():
        return 0
    return sum(p.stat().st_size for p in staging.iterdir() if p.name != MANIFEST and p.is_file())


def remove_model(name: str, models_dir: Path, repo_id: str | None = None) -> list[Path]:
    """Delete the download (complete or partial) of ``name``; returns what was removed."""
    removed = []
    targets = [model_folder(name, models_dir), staging_folder(name, models_dir)]
    if repo_id:
        targets.append(Path(models_dir) / f"models--{repo_id.replace('/', '--')}")
    for target in targets:
        if target.exists():
            shutil.rmtree(target)
            removed.append(target)
    return removed


def local_folder_problems(folder: Path | str) -> list[str]:
    """What keeps ``folder`` from being a faster-whisper model, in words; empty when it is usable."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    problems = [f"{name} is missing" for name in REQUIRED_FILES if not (folder / name).is_file()]
    if not any(folder.glob("vocabulary.*")):
        problems.append("vocabulary.json or vocabulary.txt is missing")
    config = folder / "config.json"
    if config.is_file():
        try:
            json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            problems.append("config.json cannot be read")
    tokenizer = folder / "tokenizer.json"  # cut off, it fails every job with a JSON parser's message
    if tokenizer.is_file():
        try:
            json.loads(tokenizer.read_bytes())
        except (OSError, ValueError):
            problems.append("tokenizer.json cannot be read (cut off or damaged)")
    model_bin = folder / "model.bin"
    if model_bin.is_file() and model_bin.stat().st_size < 1_000_000:
        problems.append("model.bin is too small to be a Whisper model")
    return problems


def git_blob_sha1(path: Path) -> str:
    """The id git gives a file's content, which the hub publishes for files not kept in LFS."""
    size = path.stat().st_size
    digest = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_matches(path: Path, remote: RemoteFile) -> bool:
    """True when ``path`` has exactly the published content of ``remote``."""
    if not path.is_file() or path.stat().st_size != remote.size:
        return False
    if remote.sha256:
        return sha256_of(path) == remote.sha256
    if remote.git_sha1:
        return git_blob_sha1(path) == remote.git_sha1
    return True  # the hub gave no checksum: the size is all there is to check


@dataclass(frozen=True)
class VerifyResult:
    name: str
    ok: bool
    detail: str


def verify_download(name: str, models_dir: Path) -> VerifyResult:
    """Hash every file of a downloaded model against its manifest."""
    folder = model_folder(name, models_dir)
    manifest_file = folder / MANIFEST
    if not manifest_file.is_file():
        return VerifyResult(name, False, "not downloaded")
    try:
        manifest = Manifest.from_json(manifest_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return VerifyResult(name, False, "its manifest is unreadable; remove it and download it again")
    bad = damaged_files(folder, manifest, full=True)
    if bad:
        return VerifyResult(name, False, damage_message(name, bad))
    return VerifyResult(name, True, f"intact ({len(manifest.files)} files checked)")


def write_manifest(folder: Path, manifest: Manifest) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(manifest.to_json(), encoding="utf-8")
    tmp.replace(folder / MANIFEST)


def read_manifest(folder: Path) -> Manifest | None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        return Manifest.from_json((folder / MANIFEST).read_text(encoding="utf-8"))
    return None
