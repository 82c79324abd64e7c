"""Which model suits this machine, and one sentence that says why.

The built-in model is always what runs first, because it needs no download. A CUDA GPU with room for
large-v3-turbo (about 1.6 GB of weights plus working memory for a batch) gets that model offered; a CPU gets
``small`` offered as the more accurate but slower choice (measured on this project's 2-core machines, base
runs at ~12x realtime, small at roughly a third of that).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from whisperdesk.core.models.builtin import BUILTIN

log = logging.getLogger(__name__)

GPU_MODEL = "large-v3-turbo"
CPU_UPGRADE = "small"
MIN_FREE_VRAM = 4 * 1024**3


@dataclass(frozen=True)
class Recommendation:
    model: str  # the best choice for this machine
    offer: str | None  # what to offer for download (None: nothing better to fetch)
    reason: str  # one sentence for the window

    @property
    def uses_gpu(self) -> bool:
        return self.model == GPU_MODEL


def recommend(cuda_devices: int, free_vram: int | None) -> Recommendation:
    """Pure decision from what the machine reported (tested without a GPU)."""
    if cuda_devices > 0 and free_vram is not None and free_vram >= MIN_FREE_VRAM:
        gib = free_vram / 1024**3
        return Recommendation(
            GPU_MODEL,
            GPU_MODEL,
            f"This computer has an NVIDIA GPU with {gib:.0f} GB free, so {GPU_MODEL} (much more accurate, "
            "fast on a GPU) is recommended; until it is downloaded, the built-in model does the work.",
        )
    if cuda_devices > 0:
        have = f"only {free_vram / 1024**3:.1f} GB" if free_vram is not None else "an unknown amount of"
        why = f"The NVIDIA GPU has {have} memory free (large models need about 4 GB)"
    else:
        why = "No NVIDIA GPU was found"
    return Recommendation(
        BUILTIN,
        CPU_UPGRADE,
        f"{why}, so the built-in model (base) is used: it runs well on this processor. "
        f"{CPU_UPGRADE} is more accurate but about three times slower.",
    )


def for_this_machine() -> Recommendation:
    """Ask CTranslate2 for CUDA devices and NVML for free GPU memory; never raises."""
    from whisperdesk.core.engine import cuda_device_count
    from whisperdesk.core.gpu import GpuSampler

    try:
        devices = cuda_device_count()
    except Exception:  # a broken CUDA install: treat as no GPU
        log.exception("could not count CUDA devices")
        devices = 0
    free = None
    if devices:
        sampler = GpuSampler()
        try:
            gpus = sampler.sample().gpus
        finally:
            sampler.close()
        if gpus:
            free = max(g.memory_total - g.memory_used for g in gpus)
    return recommend(devices, free)
