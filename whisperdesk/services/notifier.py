"""Tell the user when transcripts are ready or fail and when the queue drains, with or without a tray.

**One notification policy** (:class:`NotificationPolicy`, pure and clock-driven so it is tested without
waiting):

* Outcomes that arrive close together are merged: the first one opens a short window
  (:data:`COALESCE_S`) and everything that ends inside it is told in one message ("3 transcripts ready").
* A message stays up at least :data:`MIN_VISIBLE_S` before the next one replaces it; outcomes meanwhile
  wait and join the next message. So "Transcript ready" is never replaced unseen a few milliseconds later.
* When the queue drains, the message that is due becomes "Queue finished" and says what the run did:
  transcripts ready (copies included and said to be copies), failed and canceled, counted apart (a cancel
  is the user's choice, not a failure), each count followed by the names it counts.
* A cancel alone is not announced (the user just did it); it is counted in the queue-finished message.

Linux desktops without an XEmbed/StatusNotifier tray (stock GNOME) have no tray messages, so every
message goes to exactly one place: the tray balloon when the tray can show one, otherwise the in-window
banner (``bannerRequested``). ``notified`` fires for every message whichever the route.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QSystemTrayIcon

from whisperdesk.core.jobstore import CANCELED, DONE, FAILED, Job
from whisperdesk.core.queue_stats import format_seconds
from whisperdesk.services.job_text import count_phrase, first_line, window_error

log = logging.getLogger(__name__)

QUEUE_FINISHED = "Queue finished"  # the run's summary; the window takes it down when new work starts

TRAY_MESSAGE_MS = 6000
COALESCE_S = 1.5  # outcomes this close together are told in one message
MIN_VISIBLE_S = 5.0  # a message is not replaced sooner than this
NAMES_SHOWN = 3
_TRAY_ICONS = {
    "info": QSystemTrayIcon.MessageIcon.Information,
    "warning": QSystemTrayIcon.MessageIcon.Warning,
    "error": QSystemTrayIcon.MessageIcon.Critical,
}


@dataclass(frozen=True)
class Outcome:
    state: str  # DONE | FAILED | CANCELED
    name: str
    detail: str = ""  # done: how long it took; failed: why
    copied: bool = False  # done by copying the transcripts of a recording with the same content


@dataclass(frozen=True)
class Notice:
    title: str
    message: str
    level: str  # "info" | "warning" | "error"


def outcome_of(job: Job) -> Outcome:
    """What a finished job contributes to a notification."""
    if job.state == DONE:
        copied = job.copy_of is not None and not job.processing_time
        if copied:
            detail = "copied from a recording with the same content"
        elif job.duration and job.processing_time:
            detail = f"{format_seconds(job.duration)} of audio in {format_seconds(job.processing_time)}"
        else:
            detail = "transcript written"
        return Outcome(DONE, job.name, detail, copied=copied)
    if job.state == FAILED:
        return Outcome(FAILED, job.name, first_line(window_error(job)) or "failed")
    return Outcome(job.state, job.name)


def counts_text(counts: Counter[str]) -> str:
    """``3 transcripts ready, 1 failed, 1 canceled`` (zero counts left out)."""
    parts = []
    if counts[DONE]:
        parts.append(f"{count_phrase(counts[DONE], 'transcript')} ready")
    if counts[FAILED]:
        parts.append(f"{counts[FAILED]} failed")
    if counts[CANCELED]:
        parts.append(f"{counts[CANCELED]} canceled")
    return ", ".join(parts)


_GROUP_WORDS = {DONE: "ready", FAILED: "failed", CANCELED: "canceled"}


def grouped_text(outcomes: Sequence[Outcome], *, counted: bool = True) -> str:
    """Every outcome under its own count, so no name reads as belonging to another count (issue 17.7:
    "1 transcript ready, 4 failed: garbled.mp3" read as if garbled.mp3 alone had failed):
    ``2 transcripts ready (1 copied): a.wav, b.wav; 1 failed: c.mp3 (the file is empty); 1 canceled: d.wav``.
    One failure keeps its reason; copies are counted with the transcripts and said to be copies. Without
    ``counted`` (the title has the counts): ``ready: a.wav; failed: c.mp3 (the file is empty)``."""
    parts = []
    for state in (DONE, FAILED, CANCELED):
        group = [o for o in outcomes if o.state == state]
        if not group:
            continue
        label = counts_text(Counter({state: len(group)})) if counted else _GROUP_WORDS[state]
        copied = sum(o.copied for o in group)
        if copied and counted:
            label += f" ({copied} copied)"
        names = _names(group)
        if state == FAILED and len(group) == 1 and group[0].detail:
            names += f" ({group[0].detail})"
        parts.append(f"{label}: {names}")
    return "; ".join(parts)


def _names(outcomes: Sequence[Outcome]) -> str:
    names = [o.name for o in outcomes[:NAMES_SHOWN]]
    more = len(outcomes) - len(names)
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def _details(outcomes: Sequence[Outcome]) -> str:
    """One outcome: "name: detail"; several: the names."""
    if len(outcomes) == 1:
        only = outcomes[0]
        return f"{only.name}: {only.detail}" if only.detail else only.name
    return _names(outcomes)


class NotificationPolicy:
    """Decides when a message is due and what it says; no Qt and no clock of its own (times are passed)."""

    def __init__(self, *, coalesce_s: float = COALESCE_S, min_visible_s: float = MIN_VISIBLE_S) -> None:
        self._coalesce = coalesce_s
        self._min_visible = min_visible_s
        self._pending: list[Outcome] = []  # not yet told
        self._run: Counter[str] = Counter()  # every outcome since the queue last drained
        self._run_outcomes: list[Outcome] = []  # the same outcomes, named in the queue-finished message
        self._drained = False
        self._last_shown: float | None = None
        self._due: float | None = None

    @property
    def due_at(self) -> float | None:
        """When the next message is due (None: nothing to tell)."""
        return self._due

    def add(self, outcome: Outcome, now: float) -> None:
        self._pending.append(outcome)
        self._run[outcome.state] += 1
        self._run_outcomes.append(outcome)
        self._schedule(now)

    def queue_drained(self, now: float) -> None:
        if not self._run:
            return  # nothing ran: nothing to report
        self._drained = True
        self._schedule(now)

    def take(self, now: float) -> Notice | None:
        """The message due at ``now`` (None if none is due yet, or only cancels happened)."""
        if self._due is None or now < self._due:
            return None
        return self.flush(now)

    def flush(self, now: float) -> Notice | None:
        """Whatever is waiting, now (shutdown)."""
        notice = self._compose()
        self._pending.clear()
        self._due = None
        if self._drained:
            self._drained = False
            self._run.clear()
            self._run_outcomes.clear()
        if notice is not None:
            self._last_shown = now
        return notice

    def _schedule(self, now: float) -> None:
        if self._due is not None:
            return  # joins the message already on its way
        due = now + self._coalesce
        if self._last_shown is not None:
            due = max(due, self._last_shown + self._min_visible)
        self._due = due

    def _compose(self) -> Notice | None:
        if self._drained:
            failed = self._run[FAILED] > 0
            run = self._run_outcomes
            if all(o.state == CANCELED for o in run):
                message = counts_text(self._run)  # only the user's own cancels: nothing to name
            elif len(run) == 1:
                message = f"{counts_text(self._run)}: {_details(run)}"
            else:
                message = grouped_text(run)
            return Notice(QUEUE_FINISHED, message, "warning" if failed else "info")
        done = [o for o in self._pending if o.state == DONE]
        failed = [o for o in self._pending if o.state == FAILED]
        if failed and done:
            return Notice(
                counts_text(Counter(o.state for o in done + failed)),
                grouped_text(done + failed, counted=False),
                "error",
            )
        if failed:
            title = "Transcription failed" if len(failed) == 1 else f"{len(failed)} transcriptions failed"
            return Notice(title, _details(failed), "error")
        if done:
            title = "Transcript ready" if len(done) == 1 else f"{len(done)} transcripts ready"
            return Notice(title, _details(done), "info")
        return None  # only cancels: the user knows


class Notifier(QObject):
    """Routes the policy's messages to the tray or the banner. Connect the runner's job signals to
    :meth:`job_ended` and its ``queueDrained`` to :meth:`queue_finished`; call :meth:`close` at shutdown."""

    notified = Signal(str, str)  # title, message
    bannerRequested = Signal(str, str, str)  # title, message, level ("info" | "warning" | "error")
    openRequested = Signal(int)  # the person clicked a "ready" message: open that job's transcript

    def __init__(
        self,
        tray: QSystemTrayIcon | None = None,
        *,
        enabled: bool = True,
        parent: QObject | None = None,
        clock: Callable[[], float] = time.monotonic,
        policy: NotificationPolicy | None = None,
    ) -> None:
        super().__init__(parent)
        self._tray = tray
        self._enabled = enabled
        self._clock = clock
        self._policy = policy or NotificationPolicy()
        self._timer = QTimer(self)
        self._timer.setObjectName("Notifier.coalesce")
        self._timer.setSingleShot(True)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)  # a coarse timer may fire before the due time
        self._timer.timeout.connect(self._on_timer)
        self.last_route: str | None = None  # "tray" | "banner": where the latest notification went
        self.last_done_job: int | None = None  # the latest job told as ready (a click opens it)
        if tray is not None:
            tray.messageClicked.connect(self.message_clicked)
        self._closed = False

    @property
    def enabled(self) -> bool:
        return self._enabled

    @property
    def policy(self) -> NotificationPolicy:
        return self._policy

    @Slot(bool)
    def set_enabled(self, enabled: bool) -> None:
        self._enabled = enabled

    @Slot(object)
    def apply_settings(self, settings: object) -> None:
        """Follow ``Settings.ui.notify_on_finish`` (connected to the settings controller)."""
        self._enabled = bool(settings.ui.notify_on_finish)  # type: ignore[attr-defined]

    def set_tray(self, tray: QSystemTrayIcon | None) -> None:
        self._tray = tray

    def tray_usable(self) -> bool:
        tray = self._tray
        return (
            tray is not None
            and tray.isVisible()
            and QSystemTrayIcon.isSystemTrayAvailable()
            and QSystemTrayIcon.supportsMessages()
        )

    # --- what happened -------------------------------------------------------------------------------
    @Slot(object)
    def job_ended(self, job: Job) -> None:
        """Connect to the runner's ``jobFinished``, ``jobFailed`` and ``jobCanceled``."""
        if job.state == DONE:
            self.last_done_job = job.id
        self.record(outcome_of(job))

    def record(self, outcome: Outcome) -> None:
        if outcome.state not in (DONE, FAILED, CANCELED):
            raise ValueError(f"not an outcome of a finished job: {outcome.state!r}")
        if self._closed:
            return  # jobs ending while the app quits: no timer may start after close()
        self._policy.add(outcome, self._clock())
        self._arm()

    @Slot()
    def queue_finished(self) -> None:
        """Connect to the runner's ``queueDrained`` (its counts are not needed: the policy keeps its own)."""
        if self._closed:
            return
        self._policy.queue_drained(self._clock())
        self._arm()

    @Slot()
    def close(self) -> None:
        """Tell what is still waiting, now, and stop the timer for good (at shutdown)."""
        self._closed = True
        self._timer.stop()
        notice = self._policy.flush(self._clock())
        if notice is not None:
            self.notify(notice.title, notice.message, notice.level)

    # --- telling -------------------------------------------------------------------------------------
    @Slot(str, str, str)
    def notify(self, title: str, message: str, level: str = "info") -> None:
        """Show one message now (bypasses coalescing: for messages that are not job outcomes)."""
        if level not in _TRAY_ICONS:
            raise ValueError(f"unknown notification level {level!r}; use one of {', '.join(_TRAY_ICONS)}")
        if not self._enabled:
            return
        if self.tray_usable():
            assert self._tray is not None
            self._tray.showMessage(title, message, _TRAY_ICONS[level], TRAY_MESSAGE_MS)
            self.last_route = "tray"
        else:
            self.bannerRequested.emit(title, message, level)
            self.last_route = "banner"
        log.info("notification: %s: %s", title, message)
        self.notified.emit(title, message)

    @Slot()
    def message_clicked(self) -> None:
        """A click on a tray message (or the banner's "Open transcript"): open the latest ready transcript."""
        if self.last_done_job is not None:
            self.openRequested.emit(self.last_done_job)

    def _arm(self) -> None:
        due = self._policy.due_at
        if due is None:
            self._timer.stop()
            return
        self._timer.start(max(0, round((due - self._clock()) * 1000)))

    @Slot()
    def _on_timer(self) -> None:
        notice = self._policy.take(self._clock())
        if notice is not None:
            self.notify(notice.title, notice.message, notice.level)
        self._arm()
