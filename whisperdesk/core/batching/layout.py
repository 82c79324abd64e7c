"""How the model is loaded for batching, and what the scheduler needs to know about a loaded model."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Measured on a 2-core CPU with a tiny-shaped model (BENCHMARKS.md): the encoder is fastest one window at a
# time while beam search wants big batches. GPUs encode the whole batch at once.
CPU_ENCODE_BATCH = 1
MAX_STREAMS = 8  # inference threads at most, one per CTranslate2 worker of the model


def physical_cores() -> int:
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or os.cpu_count() or 1)
    except Exception:  # psutil cannot read the topology in some sandboxes
        return os.cpu_count() or 1


def cpu_batching_layout(cpu_threads: int = 0) -> tuple[int, int]:
    """(intra_threads, workers) for a CPU model that serves the scheduler: two workers, half the cores each.

    Measured on a 2-core CPU with a tiny-shaped model (BENCHMARKS.md): two single-threaded CTranslate2 workers
    running two batches at once did encode + beam-5 generate ~20 % faster than one worker with two threads
    (beam search's many small per-step ops scale poorly across threads), and they leave no OpenMP threads
    spinning at barriers against the CPU stage. ``cpu_threads`` 0 means the physical core count.
    """
    cores = cpu_threads if cpu_threads > 0 else physical_cores()
    workers = 2 if cores >= 2 else 1
    return max(1, cores // workers), workers


def load_for_batching(model_path: str, device: str, compute_type: str, cpu_threads: int = 0) -> Any:
    """A ``WhisperModel`` laid out for the scheduler: on CPU ``cpu_batching_layout``; on GPU one worker."""
    from faster_whisper import WhisperModel

    if device == "cpu":
        intra, workers = cpu_batching_layout(cpu_threads)
        return WhisperModel(
            model_path, device="cpu", compute_type=compute_type, cpu_threads=intra, num_workers=workers
        )
    return WhisperModel(
        model_path, device=device, compute_type=compute_type, cpu_threads=cpu_threads, num_workers=1
    )


def default_cpu_workers() -> int:
    """Two CPU-stage threads, up to one per two cores (at most four).

    The CPU stage is ~20× cheaper than inference overall, but at the start a long file's VAD would keep the
    model waiting; a second thread cuts the next files meanwhile. Once the prefetch queue is full both sleep.
    """
    return max(2, min(4, (os.cpu_count() or 2) // 2))


@dataclass(eq=False)
class ModelHandle:
    """A loaded ``faster_whisper.WhisperModel`` with what the scheduler needs to know about it.

    ``cpu_fallback`` builds a CPU copy of the same model; it is called at most once, when even a single
    window runs out of GPU memory.
    """

    model: Any
    device: str
    compute_type: str
    label: str
    batch_size: int
    encode_batch_size: int | None = None  # None: the whole batch on GPU, CPU_ENCODE_BATCH on CPU
    cpu_fallback: Callable[[], ModelHandle] | None = None
    _tokenizers: dict[tuple[str, str | None], Any] = field(default_factory=dict, repr=False)
    _prompt_tokens: dict[str | None, list[int]] = field(default_factory=dict, repr=False)

    @property
    def encode_batch(self) -> int:
        if self.encode_batch_size is not None:
            return max(1, self.encode_batch_size)
        return self.batch_size if self.device == "cuda" else CPU_ENCODE_BATCH

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    @property
    def workers(self) -> int:
        """CTranslate2 workers (``inter_threads``): how many batches this model can run at once."""
        return max(1, min(MAX_STREAMS, int(getattr(self.model.model, "num_workers", 1) or 1)))

    def tokenizer(self, task: str, language: str | None) -> Any:
        key = (task, language)
        tok = self._tokenizers.get(key)
        if tok is None:
            from faster_whisper.tokenizer import Tokenizer

            tok = Tokenizer(self.model.hf_tokenizer, self.multilingual, task=task, language=language)
            self._tokenizers[key] = tok
        return tok

    def prompt_tokens(self, initial_prompt: str | None) -> list[int]:
        if initial_prompt not in self._prompt_tokens:
            tok = self.tokenizer("transcribe", "en" if self.multilingual else None)
            self._prompt_tokens[initial_prompt] = (
                tok.encode(" " + initial_prompt.strip()) if initial_prompt and initial_prompt.strip() else []
            )
        return self._prompt_tokens[initial_prompt]
