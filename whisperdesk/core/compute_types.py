"""Which compute types the settings may offer: what CTranslate2 supports on the device actually used.

Kept apart from the dialog so the rule ("auto" means CUDA when CTranslate2 sees a CUDA device, as the
engine resolves it) is testable without Qt; CTranslate2 is imported lazily by the engine helpers.
"""

from __future__ import annotations

from dataclasses import dataclass

from whisperdesk.core.engine import cuda_device_count, supported_compute_types
from whisperdesk.core.settings import COMPUTE_TYPES

# Best first: the dialog picks the first one left when the saved type is not available on the device.
_PREFERENCE = {
    "cuda": (
        "int8_float16",
        "float16",
        "int8",
        "int8_bfloat16",
        "bfloat16",
        "int8_float32",
        "float32",
        "int16",
    ),
    "cpu": (
        "int8",
        "int8_float32",
        "float32",
        "int16",
        "int8_float16",
        "float16",
        "bfloat16",
        "int8_bfloat16",
    ),
}


@dataclass(frozen=True)
class ComputeChoice:
    device: str  # the device "auto" resolves to, or the chosen one
    compute_types: tuple[str, ...]  # supported on it, best first; empty when the device is unusable
    note: str  # why, in words, for the dialog


def resolve_choice_device(device: str) -> tuple[str, str]:
    if device == "auto":
        count = cuda_device_count()
        if count > 0:
            return "cuda", f"auto: CTranslate2 sees {count} CUDA device(s)"
        return "cpu", "auto: no CUDA device visible to CTranslate2, so the CPU is used"
    return device, ""


def compute_choice(device: str) -> ComputeChoice:
    """The compute types to offer for a device setting ("auto", "cpu" or "cuda")."""
    resolved, note = resolve_choice_device(device)
    supported = supported_compute_types(resolved)
    if resolved == "cuda" and cuda_device_count() == 0:
        supported = set()
    order = _PREFERENCE.get(resolved, COMPUTE_TYPES)
    types = tuple(t for t in order if t in supported) + tuple(
        sorted(t for t in supported if t not in order and t in COMPUTE_TYPES)
    )
    if not types:
        note = (
            f"CTranslate2 sees no usable {resolved.upper()} device here (no NVIDIA GPU, driver or CUDA 12 "
            "libraries); choose cpu or auto"
        )
    return ComputeChoice(resolved, types, note)


def best_compute_type(current: str, choice: ComputeChoice) -> str | None:
    """Keep ``current`` when the device supports it, else the device's best type (None: no usable type)."""
    if current in choice.compute_types:
        return current
    return choice.compute_types[0] if choice.compute_types else None
