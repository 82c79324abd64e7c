"""The notification policy (coalescing, minimum visible time, canceled apart from failed) and how job
outcomes read in the window: tested with an injected clock, then through the Qt notifier's real timer."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.errors import OutputError
from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, Job, JobStore
from whisperdesk.core.outputs import write_outputs
from whisperdesk.core.settings import OutputOptions, Settings, UiOptions
from whisperdesk.core.transcript import Segment, Transcript
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.job_text import OutputProblem, output_problem, window_error
from whisperdesk.services.notifier import (
    COALESCE_S,
    MIN_VISIBLE_S,
    NotificationPolicy,
    Notifier,
    Outcome,
    outcome_of,
)

pytestmark = pytest.mark.usefixtures("no_leaks")

READY = Outcome(DONE, "talk.mp3", "0:11 of audio in 0:02")


def drain(policy: NotificationPolicy, clock: FakeClock) -> list[tuple[float, str, str, str]]:
    """Run the policy's clock forward until nothing is due; what was told, and when."""
    told = []
    while policy.due_at is not None:
        clock.advance(max(0.0, policy.due_at - clock.monotonic()))
        notice = policy.take(clock.monotonic())
        if notice is not None:
            told.append((clock.monotonic(), notice.title, notice.message, notice.level))
    return told


# --- the policy, with a fake clock ------------------------------------------------------------------------
def test_outcomes_close_together_are_told_in_one_message(clock: FakeClock) -> None:
    policy = NotificationPolicy()
    start = clock.monotonic()
    for i, name in enumerate(["a.mp3", "b.mp3", "c.mp3", "d.mp3"]):
        policy.add(Outcome(DONE, name, "done"), clock.monotonic())
        if i < 3:
            clock.advance(0.3)
    assert policy.take(clock.monotonic()) is None  # the window is still open
    told = drain(policy, clock)
    assert told == [(start + COALESCE_S, "4 transcripts ready", "a.mp3, b.mp3, c.mp3 and 1 more", "info")]


def test_ready_is_not_replaced_by_queue_finished_but_merged_into_it(clock: FakeClock) -> None:
    """Today's bug: "Transcript ready" was replaced by "Queue finished" within milliseconds."""
    policy = NotificationPolicy()
    policy.add(READY, clock.monotonic())
    clock.advance(0.003)
    policy.queue_drained(clock.monotonic())
    assert drain(policy, clock) == [
        (
            pytest.approx(1000.0 + COALESCE_S),
            "Queue finished",
            "1 transcript ready: talk.mp3: 0:11 of audio in 0:02",
            "info",
        )
    ]


def test_a_message_stays_up_before_the_next_replaces_it(clock: FakeClock) -> None:
    policy = NotificationPolicy()
    policy.add(READY, clock.monotonic())
    first = drain(policy, clock)
    clock.advance(0.2)  # the next job ends while the first message is still showing
    policy.add(Outcome(FAILED, "bad.wav", "not an audio file"), clock.monotonic())
    clock.advance(0.1)
    policy.add(Outcome(DONE, "memo.flac", "done"), clock.monotonic())
    second = drain(policy, clock)
    assert second[0][0] - first[0][0] == pytest.approx(MIN_VISIBLE_S)
    assert second == [
        (
            pytest.approx(first[0][0] + MIN_VISIBLE_S),
            "1 transcript ready, 1 failed",
            "ready: memo.flac; failed: bad.wav (not an audio file)",  # each name under its own outcome
            "error",
        )
    ]


def test_a_cancel_is_counted_as_canceled_never_as_failed(clock: FakeClock) -> None:
    policy = NotificationPolicy()
    policy.add(Outcome(CANCELED, "long meeting.m4a"), clock.monotonic())
    clock.advance(COALESCE_S)
    assert policy.take(clock.monotonic()) is None  # the user just canceled it: nothing to announce
    policy.queue_drained(clock.monotonic())
    assert [t[1:] for t in drain(policy, clock)] == [("Queue finished", "1 canceled", "info")]


def test_queue_finished_counts_the_whole_run(clock: FakeClock) -> None:
    policy = NotificationPolicy()
    policy.add(Outcome(DONE, "one.wav", "done"), clock.monotonic())
    drain(policy, clock)
    clock.advance(30)
    policy.add(Outcome(FAILED, "two.wav", "the file is empty"), clock.monotonic())
    policy.add(Outcome(CANCELED, "three.wav"), clock.monotonic())
    policy.queue_drained(clock.monotonic())
    assert [t[1:] for t in drain(policy, clock)] == [
        (
            "Queue finished",
            "1 transcript ready: one.wav; 1 failed: two.wav (the file is empty); 1 canceled: three.wav",
            "warning",
        )
    ]
    policy.queue_drained(clock.monotonic())  # a second drain with nothing new says nothing
    assert policy.due_at is None


def test_queue_finished_names_every_job_under_its_own_count(clock: FakeClock) -> None:
    """Issue 17.7: "1 transcript ready, 4 failed: garbled.mp3" read as if garbled.mp3 alone had failed, and
    a copied transcript was not said to be one."""
    policy = NotificationPolicy()
    policy.add(Outcome(DONE, "memo.wav", "0:11 of audio in 0:02"), clock.monotonic())
    policy.add(Outcome(DONE, "memo copy.wav", "copied", copied=True), clock.monotonic())
    for name in ("a.mp3", "b.mp3", "c.mp3", "garbled.mp3"):
        policy.add(Outcome(FAILED, name, "not a recording"), clock.monotonic())
    policy.queue_drained(clock.monotonic())
    assert [t[1:] for t in drain(policy, clock)] == [
        (
            "Queue finished",
            "2 transcripts ready (1 copied): memo.wav, memo copy.wav; "
            "4 failed: a.mp3, b.mp3, c.mp3 and 1 more",
            "warning",
        )
    ]


def test_a_copied_transcript_says_so(store: JobStore, tmp_path: Path) -> None:
    original = write_audio(tmp_path / "memo.wav", noise(1.0, seed=8))
    twin = tmp_path / "copy of memo.wav"
    twin.write_bytes(original.read_bytes())
    first = store.add(original).job
    store.claim_next()
    store.mark_done(first.id, outputs=[], duration=1.0, processing_time=0.5)
    copy = store.add(twin).job
    assert copy.copy_of == first.id
    store.claim_next()
    done = store.mark_done(copy.id, outputs=[], duration=1.0, processing_time=0.0)
    outcome = outcome_of(done)
    assert outcome.copied and outcome.detail == "copied from a recording with the same content"
    assert not outcome_of(store.require(first.id)).copied


# --- outcomes from real job records ------------------------------------------------------------------------
def _failed_job(store: JobStore, folder: Path, error: tuple[str, str | None]) -> Job:
    job = store.add(write_audio(folder / "talk.wav", noise(1.0, seed=3))).job
    store.claim_next()
    return store.mark_failed(job.id, error[0], kind=error[1])


def _output_error(source: Path, output_dir: Path) -> tuple[str, str | None]:
    """The message and kind the processor records for a real output failure."""
    transcript = Transcript(str(source), [Segment(0.0, 1.0, "hello")], "en", 1.0, 1.0, "tiny", "int8", "cpu")
    with pytest.raises(OutputError) as caught:
        write_outputs(
            transcript, source, OutputOptions(formats=("txt",), output_dir=str(output_dir)), ledger=None
        )
    return str(caught.value), caught.value.kind


def test_a_foreign_file_in_the_way_reads_without_cli_advice(store: JobStore, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "talk.txt").write_text("my own notes\n")
    source = write_audio(tmp_path / "talk.wav", noise(1.0, seed=3))
    error = _output_error(source, out)
    job = _failed_job(store, tmp_path / "in", error)
    assert output_problem(job) is OutputProblem.IN_THE_WAY
    shown = window_error(job)
    assert "--overwrite" not in shown and "overwrite=True" not in shown
    assert str(out / "talk.txt") in shown and '"Overwrite"' in shown and '"Choose another folder…"' in shown
    outcome = outcome_of(job)
    assert outcome.state == FAILED and "--overwrite" not in outcome.detail


def test_an_unwritable_output_folder_offers_another_folder_only(store: JobStore, tmp_path: Path) -> None:
    blocker = tmp_path / "not a folder"
    blocker.write_text("x")
    source = write_audio(tmp_path / "talk.wav", noise(1.0, seed=3))
    job = _failed_job(store, tmp_path / "in", _output_error(source, blocker / "transcripts"))
    assert output_problem(job) is OutputProblem.UNWRITABLE
    assert '"Choose another folder…"' in window_error(job) and "Overwrite" not in window_error(job)
    other = _failed_job(store, tmp_path / "in2", ("could not decode: damaged header", None))
    assert (
        output_problem(other) is OutputProblem.NONE
        and window_error(other) == "could not decode: damaged header"
    )


def test_a_done_job_tells_how_long_it_took(store: JobStore, tmp_path: Path) -> None:
    job = store.add(write_audio(tmp_path / "memo.wav", noise(1.0, seed=4))).job
    store.claim_next()
    done = store.mark_done(job.id, outputs=[], duration=671.0, language="en", processing_time=41.0)
    assert outcome_of(done) == Outcome(DONE, "memo.wav", "11:11 of audio in 0:41")


# --- the Qt notifier: real timer, routes ----------------------------------------------------------------
def test_notifier_coalesces_with_its_timer_and_shows_in_the_banner(qtbot: QtBot) -> None:
    notifier = Notifier(None, policy=NotificationPolicy(coalesce_s=0.05, min_visible_s=0.2))
    banners: list[tuple[str, str, str]] = []
    notifier.bannerRequested.connect(lambda t, m, lvl: banners.append((t, m, lvl)))
    with qtbot.waitSignal(notifier.notified) as signal:
        notifier.record(READY)
        notifier.record(Outcome(DONE, "memo.flac", "done"))
        notifier.queue_finished()
    assert signal.args == ["Queue finished", "2 transcripts ready: talk.mp3, memo.flac"]
    assert banners == [("Queue finished", "2 transcripts ready: talk.mp3, memo.flac", "info")]
    assert notifier.last_route == "banner"
    notifier.record(Outcome(FAILED, "bad.wav", "the file is empty"))
    with qtbot.waitSignal(notifier.notified) as closing:
        notifier.close()  # shutdown tells what is waiting at once and leaves no timer running
    assert closing.args == ["Transcription failed", "bad.wav: the file is empty"]
    notifier.record(READY)  # a job that ends while the app quits starts no timer
    notifier.queue_finished()
    assert notifier.policy.due_at is None and not notifier.findChild(QTimer).isActive()


def test_notifier_disabled_by_settings_stays_quiet(qtbot: QtBot) -> None:
    notifier = Notifier(None, policy=NotificationPolicy(coalesce_s=0.01))
    notifier.apply_settings(Settings(ui=UiOptions(notify_on_finish=False)))
    with qtbot.assertNotEmitted(notifier.notified, wait=100):
        notifier.record(READY)
    notifier.close()
    assert notifier.last_route is None
    with pytest.raises(ValueError, match="level"):
        notifier.notify("t", "m", "loud")
    with pytest.raises(ValueError, match="outcome"):
        notifier.record(Outcome("running", "x.wav"))
