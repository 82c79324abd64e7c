"""The shipped CAM++ speaker-embedding network, checked by hash and run with onnxruntime.

Why the hash check: the ONNX file is built once by tools/build_speaker_model.py from pinned weights; a file
changed on disk (a bad merge, a truncated install) would give silently wrong speakers, so it is refused.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from whisperdesk.core.errors import WhisperDeskError
from whisperdesk.core.models.integrity import IntegrityError, verify_file

MODEL_FILE = Path(__file__).resolve().parents[2] / "resources" / "campplus_cn_en_common.onnx"
MODEL_SHA256 = "21f6111c7f7831637818fe5ab7ca8150672e913e66c24f9065c7fdcf39d70a4c"
EMBEDDING_DIM = 192


class SpeakerModelError(WhisperDeskError):
    """The speaker model file is missing or damaged; reinstalling WhisperDesk restores it."""


def verify_model(path: Path | None = None, expected: str | None = None) -> Path:
    """Return ``path`` (default: the shipped file) if its sha256 is the pinned one; raise SpeakerModelError
    saying what to do if not."""
    path = path or MODEL_FILE
    expected = expected or MODEL_SHA256
    try:
        verify_file(path, expected, what="speaker-label model")
    except IntegrityError as exc:
        raise SpeakerModelError(f"{exc} Reinstall WhisperDesk to restore it.") from None
    return path


class SpeakerEmbedder:
    """Turns batches of fbank windows (batch, frames, 80) into L2-normalised 192-d speaker embeddings."""

    def __init__(self, path: Path | None = None, *, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session: Any = ort.InferenceSession(
            str(verify_model(path)), options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def embed(self, feats: np.ndarray) -> np.ndarray:
        with self._lock:
            out = self._session.run(None, {"feats": np.ascontiguousarray(feats, dtype=np.float32)})[0]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.maximum(norms, 1e-12)).astype(np.float32)


@lru_cache(maxsize=2)
def shared_embedder(threads: int = 1) -> SpeakerEmbedder:
    """One session per thread count for the process: loading costs ~0.3 s and 30 MB each time."""
    return SpeakerEmbedder(threads=threads)
