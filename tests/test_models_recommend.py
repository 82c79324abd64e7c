"""The hardware-aware default: what is recommended, offered and said, for GPU and CPU machines."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from test_ui_shell import make_app, paths  # noqa: F401  (fixtures: the app shell as tests build it)

from whisperdesk.core.models.builtin import BUILTIN
from whisperdesk.core.models.recommend import MIN_FREE_VRAM, for_this_machine, recommend

GIB = 1024**3


def test_a_gpu_with_room_gets_large_v3_turbo_offered_while_the_builtin_model_works() -> None:
    rec = recommend(1, 10 * GIB)
    assert rec.model == rec.offer == "large-v3-turbo" and rec.uses_gpu
    assert "NVIDIA GPU with 10 GB free" in rec.reason and "until it is downloaded, the built-in" in rec.reason


def test_a_small_gpu_falls_back_to_the_builtin_model_and_says_why() -> None:
    rec = recommend(1, MIN_FREE_VRAM - GIB)
    assert rec.model == BUILTIN and rec.offer == "small"
    assert "only 3.0 GB memory free" in rec.reason


def test_a_cpu_gets_the_builtin_model_with_small_as_the_better_slower_choice() -> None:
    rec = recommend(0, None)
    assert rec.model == BUILTIN and rec.offer == "small" and not rec.uses_gpu
    assert rec.reason.startswith("No NVIDIA GPU was found") and "three times slower" in rec.reason
    assert "\n" not in rec.reason  # one line


def test_this_machine_gets_a_recommendation_without_raising() -> None:
    rec = for_this_machine()
    assert rec.model in (BUILTIN, "large-v3-turbo") and rec.reason


def test_first_start_offers_the_better_model_in_one_line(qtbot: QtBot, make_app: Any) -> None:  # noqa: F811
    ctx = make_app()
    ctx.offer_better_model()
    banner = ctx.window.model_banner
    assert banner.showing and banner.level == "info" and banner.actions() == ["download"]
    assert banner.text == ctx.recommendation().reason
    offer = ctx.recommendation().offer
    assert banner.button("download").text() == (  # the button says what it fetches and how big it is
        "Download small (486 MB)…" if offer == "small" else "Download large-v3-turbo (1.6 GB)…"
    )
    ctx.window.modelManagerRequested.disconnect(ctx.open_model_manager)  # its modal dialog would block here
    with qtbot.waitSignal(ctx.window.modelManagerRequested):
        qtbot.mouseClick(banner.button("download"), Qt.MouseButton.LeftButton)
