"""Byte counts for people: one formatter for the doctor, the GPU panel and the model manager."""

from __future__ import annotations


def format_bytes(count: float, *, decimal: bool = False) -> str:
    """``1.5 GiB`` (binary, as memory is reported) or, with ``decimal``, ``1.6 GB`` (as disks and downloads
    are sold and as the hub lists model sizes)."""
    base, units = (1000, ("bytes", "KB", "MB", "GB")) if decimal else (1024, ("B", "KiB", "MiB", "GiB"))
    value = float(count)
    for unit in units:
        if value < base or unit == units[-1]:
            return f"{value:.0f} {unit}" if unit == units[0] else f"{value:.1f} {unit}"
        value /= base
    raise AssertionError("unreachable")


def format_size(count: float) -> str:
    """Disk and download sizes, in decimal units."""
    return format_bytes(count, decimal=True)
