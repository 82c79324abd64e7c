"""Progress that moves (issue 17, point 2): estimates inside a generate, "Waiting for the model", paced ETA.

Orders and events only. The scheduler's plumbing runs on the random-weight micro model (it asserts no text);
the job table on a real job store with an injected clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.core.batching.decode import GenerateCall, default_generate
from whisperdesk.core.batching.layout import ModelHandle
from whisperdesk.core.batching.scheduler import BatchScheduler
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.settings import DecodeOptions
from whisperdesk.devtools.synth_audio import noise, tone, write_audio
from whisperdesk.ui.queue_model import WAITING_LABEL, Column, JobTableModel

FAST = DecodeOptions(beam_size=1, vad=False, temperature=(0.0,), max_new_tokens=8)
WAIT_MS = 20_000


def _audio(seconds: float, seed: int = 0) -> np.ndarray:
    return (noise(seconds, amplitude=0.2, seed=seed) + tone(300.0, seconds, amplitude=0.2)).astype(np.float32)


@pytest.fixture(scope="module")
def micro(whisper_model_dir: Path) -> Any:
    from faster_whisper import WhisperModel

    return WhisperModel(str(whisper_model_dir), device="cpu", compute_type="int8", cpu_threads=1)


@pytest.fixture
def scheduler_with(micro: Any) -> Iterator[Callable[..., BatchScheduler]]:
    made: list[BatchScheduler] = []

    def make(generate: Callable[[GenerateCall], list[Any]]) -> BatchScheduler:
        made.append(BatchScheduler(cpu_workers=1, generate_fn=generate))
        return made[-1]

    yield make
    for scheduler in made:
        scheduler.close()


def test_progress_moves_while_a_generate_runs_and_never_goes_back(
    micro: Any, scheduler_with: Callable[..., BatchScheduler]
) -> None:
    """The generate below returns only once progress has moved while it ran: from the estimate, since
    CTranslate2's Whisper generate reports nothing until the batch is done."""
    log: list[tuple[str, float]] = []
    generating = threading.Event()
    moved = threading.Event()

    def generate(call: GenerateCall) -> list[Any]:
        log.append(("generate started", 0.0))
        generating.set()
        moved.wait(60)
        generating.clear()
        log.append(("generate returned", 0.0))
        return default_generate(call)

    def progress(done: float, _total: float) -> None:
        log.append(("progress", done))
        if generating.is_set():
            moved.set()

    scheduler = scheduler_with(generate)
    scheduler.transcribe(ModelHandle(micro, "cpu", "int8", "micro", 2), "talk", FAST, audio=_audio(50.0),
                         progress=progress)  # fmt: skip
    kinds = [kind for kind, _ in log]
    first = kinds.index("generate started")
    assert "progress" in kinds[first : kinds.index("generate returned")]
    dones = [d for kind, d in log if kind == "progress"]
    assert dones == sorted(dones) and dones[-1] == pytest.approx(50.0)


def test_a_job_waits_for_the_model_while_another_jobs_batch_runs(
    micro: Any, scheduler_with: Callable[..., BatchScheduler]
) -> None:
    """One model worker, batch size 1: B is queued while A's batch decodes, so B says it waits; it says it
    is being decoded only once its own window is in a batch."""
    events: list[str] = []
    release = threading.Event()
    a_decoding = threading.Event()

    calls: list[int] = []

    def generate(call: GenerateCall) -> list[Any]:
        calls.append(call.members[0][0])
        events.append(f"generate {call.members[0][0]}")
        if len(calls) == 1:
            a_decoding.set()
            release.wait(60)
        return default_generate(call)

    scheduler = scheduler_with(generate)
    handle = ModelHandle(micro, "cpu", "int8", "micro", 1)
    results: dict[str, Any] = {}

    def run(name: str, seed: int) -> None:
        results[name] = scheduler.transcribe(
            handle,
            name,
            FAST,
            audio=_audio(20.0, seed),
            on_waiting=lambda w: events.append(f"{name} waits {w}"),
        )

    a = threading.Thread(target=run, args=("A", 1))
    a.start()
    assert a_decoding.wait(60)
    b = threading.Thread(target=run, args=("B", 2))
    b.start()
    while "B waits True" not in events:
        threading.Event().wait(0.02)
    release.set()
    a.join(60)
    b.join(60)
    assert set(results) == {"A", "B"}
    b_events = [e for e in events if e.startswith("B") or e == "generate 2"]
    assert b_events[0] == "B waits True"
    assert b_events.index("B waits False") < len(b_events)
    assert "A waits False" in events and events.index("A waits False") < events.index("B waits True")


# --- the job table ------------------------------------------------------------------------------------
@pytest.fixture
def table(qtbot: QtBot, store: JobStore) -> Iterator[tuple[JobTableModel, list[float]]]:
    now = [1_000_000.0]
    model = JobTableModel(store, poll_ms=3_600_000, clock=lambda: now[0])
    yield model, now
    model.close()
    model.deleteLater()


def _cell(model: JobTableModel, job_id: int, column: Column) -> object:
    row = model.row_of(job_id)
    assert row is not None
    return model.index(row, int(column)).data()


def test_a_waiting_job_says_so_and_its_eta_follows_its_own_pace(
    qtbot: QtBot, store: JobStore, table: tuple[JobTableModel, list[float]], tmp_path: Path
) -> None:
    model, now = table
    job = store.add(write_audio(tmp_path / "memo.wav", noise(2.0, amplitude=0.3))).job
    running = store.claim_next()
    assert running is not None
    qtbot.waitUntil(lambda: _cell(model, job.id, Column.STATE) == "Running", timeout=WAIT_MS)
    model.set_waiting(job.id, True)
    assert _cell(model, job.id, Column.STATE) == WAITING_LABEL
    started = model.job(job.id).started_at  # type: ignore[union-attr]
    assert started is not None
    now[0] = started + 60.0  # a minute waiting for the model, then decoding at 4× realtime
    model.set_waiting(job.id, False)
    assert _cell(model, job.id, Column.STATE) == "Running"
    model.on_job_progress(job.id, 20.0, 200.0)
    now[0] += 10.0
    model.on_job_progress(job.id, 60.0, 200.0)
    assert _cell(model, job.id, Column.ETA) == "0:35"  # 140 s of audio at its 4×, not at 60/70 s


def test_progress_of_a_job_being_canceled_no_longer_moves_its_row(
    qtbot: QtBot, store: JobStore, table: tuple[JobTableModel, list[float]], tmp_path: Path
) -> None:
    model, _now = table
    job = store.add(write_audio(tmp_path / "talk.wav", noise(2.0, amplitude=0.3))).job
    store.claim_next()
    qtbot.waitUntil(lambda: _cell(model, job.id, Column.STATE) == "Running", timeout=WAIT_MS)
    store.mark_progress(job.id, 0.4)  # the processor's last write before the click
    model.on_job_progress(job.id, 40.0, 100.0)
    model.mark_canceling(job.id)
    model.on_job_progress(job.id, 75.0, 100.0)  # a report already on its way when the user clicked
    assert _cell(model, job.id, Column.PROGRESS) == "40 %"
    store.mark_canceled(job.id)
    qtbot.waitUntil(lambda: _cell(model, job.id, Column.STATE) == "Canceled", timeout=WAIT_MS)
    assert _cell(model, job.id, Column.PROGRESS) == "stopped at 40 %"
