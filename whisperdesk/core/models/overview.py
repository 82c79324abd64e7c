"""One row per model for the model manager and `whisperdesk models list`: the same facts in both."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from whisperdesk.core.models.builtin import BUILTIN, installed_source, is_builtin
from whisperdesk.core.models.catalogue import CatalogueEntry, catalogue, repo_id_for
from whisperdesk.core.models.recommend import Recommendation
from whisperdesk.core.models.store import installed_path, partial_bytes
from whisperdesk.core.units import format_size


@dataclass(frozen=True)
class ModelRow:
    entry: CatalogueEntry
    installed: bool
    partial: int  # bytes of an interrupted download
    in_use: bool
    recommended: str  # "" | "recommended" | "better, slower"

    @property
    def status(self) -> str:
        if is_builtin(self.entry.name):
            state = "included" if self.installed else "missing: reinstall WhisperDesk"
        elif self.installed:
            state = "downloaded"
        elif self.partial:
            state = f"partly downloaded ({format_size(self.partial)})"
        else:
            state = "not downloaded"
        return f"{state}, in use" if self.in_use else state


def rows(models_dir: Path, current: str, recommendation: Recommendation | None) -> list[ModelRow]:
    out = []
    for entry in catalogue():
        if entry.name == BUILTIN:
            installed = installed_source() is not None
        else:
            installed = installed_path(entry.name, models_dir, repo_id_for(entry.name)) is not None
        hint = ""
        if recommendation is not None:
            if entry.name == recommendation.model:
                hint = "recommended"
            elif entry.name == recommendation.offer:
                hint = "better, slower"
        in_use = entry.name == current or (is_builtin(current) and entry.name == BUILTIN)
        out.append(ModelRow(entry, installed, partial_bytes(entry.name, models_dir), in_use, hint))
    return out
