"""The transcript workspace for one job: read the segments, hear them, correct them, save and export.

Its own window (1280×720 by default, like the queue): a transcript is read beside the queue, not instead of
it, and a person often has two open side by side. Keyboard first, every shortcut in the menus: Space plays
or pauses, ←/→ seek 5 s, Ctrl+F finds in this transcript, Ctrl+S saves, Ctrl+Z/Ctrl+Shift+Z undo and redo,
F2 edits the selected segment in place.

Every correction is a QUndoCommand holding the transcript before and after (the edits themselves are the
pure functions of :mod:`whisperdesk.core.library.edits`). Saving goes through the transcript service,
which calls the library's ``save_edit`` off the GUI thread; outputs changed outside the app come back as
conflicts and are only overwritten when the person says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEventLoop, QModelIndex, Qt, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QKeyEvent, QKeySequence, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSlider,
    QSplitter,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.library.edits import (
    EditError,
    edit_text,
    merge_with_next,
    rename_speaker,
    set_speaker,
    split_segment,
)
from whisperdesk.core.speakers.evidence import speaker_evidence
from whisperdesk.core.transcript import Transcript
from whisperdesk.services.playback import SEEK_STEP_S, Playback
from whisperdesk.ui.notifications import NotificationBanner
from whisperdesk.ui.speaker_dialog import SpeakerNamesDialog, SpeakersPanel
from whisperdesk.ui.transcript_model import TranscriptModel, stamp
from whisperdesk.ui.transcript_view import SegmentListView

log = logging.getLogger(__name__)

RATES = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
EXPORT_FORMATS = (
    ("txt", "Text"),
    ("srt", "SRT subtitles"),
    ("vtt", "WebVTT subtitles"),
    ("json", "JSON"),
    ("docx", "Word document"),
    ("md", "Markdown"),
)
LOCATE_ACTION = "locate"
NO_SOUND_TEXT = "No sound device found: playback runs silently; the text still follows."
AskFn = Callable[[QWidget, str, str], bool]
UnsavedFn = Callable[[QWidget, str, str], str]  # answers SAVE, DISCARD or CANCEL
SAVE, DISCARD, CANCEL = "save", "discard", "cancel"
ChooseFileFn = Callable[[QWidget, str, str, str], str]


def _ask(parent: QWidget, title: str, text: str) -> bool:
    answer = QMessageBox.question(
        parent, title, text, QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_save_discard(parent: QWidget, title: str, text: str) -> str:
    """Save / Discard / Cancel, Save the default (a yes/no "close anyway?" makes saving a second trip)."""
    buttons = QMessageBox.StandardButton
    answer = QMessageBox.question(
        parent, title, text, buttons.Save | buttons.Discard | buttons.Cancel, buttons.Save
    )
    return {buttons.Save: SAVE, buttons.Discard: DISCARD}.get(answer, CANCEL)


def _choose_open(parent: QWidget, caption: str, folder: str, filters: str) -> str:
    return QFileDialog.getOpenFileName(parent, caption, folder, filters)[0]


def _choose_save(parent: QWidget, caption: str, path: str, filters: str) -> str:
    return QFileDialog.getSaveFileName(parent, caption, path, filters)[0]


class TranscriptEdit(QUndoCommand):
    """One correction: the transcript before and after, and the row to select afterwards."""

    def __init__(self, window: TranscriptWindow, label: str, before: Transcript, after: Transcript, row: int):
        super().__init__(label)
        self._window, self._before, self._after, self._row = window, before, after, row

    def redo(self) -> None:
        self._window._show_transcript(self._after, self._row)

    def undo(self) -> None:
        self._window._show_transcript(self._before, self._row)


class TranscriptWindow(QMainWindow):
    """Signals: saveRequested(int job_id, object transcript, bool overwrite), exportRequested(object
    transcript, str format, str path), closed(int job_id)."""

    saveRequested = Signal(int, object, bool)
    speakersNamed = Signal(int, object)  # job id, {label when opened: name saved} (to remember voices)
    saveSettled = Signal()  # a save answered: saved, failed, or files changed outside the app
    exportRequested = Signal(object, str, str)
    closed = Signal(int)

    def __init__(
        self,
        job_id: int,
        title: str,
        transcript: Transcript,
        playback: Playback,
        *,
        ask: AskFn = _ask,
        ask_unsaved: UnsavedFn = ask_save_discard,
        choose_open: ChooseFileFn = _choose_open,
        choose_save: ChooseFileFn = _choose_save,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.job_id = job_id
        self._title = title
        self._ask, self._choose_open, self._choose_save = ask, choose_open, choose_save
        self._ask_unsaved = ask_unsaved
        self._discard = False  # closing without asking (the app shuts down)
        self._keep_open = False  # the save made while closing needs an answer here
        self._named: dict[str, str] = {}  # speaker renamed since the last save: label then -> name now
        self._saving_named: dict[str, str] = {}
        self._saving_at = -1  # the undo stack's index the save in flight was made at
        self.export_folder: Path | None = None  # where the job's transcripts are (exports start there)
        self._exporting = ""
        self.setObjectName("transcriptWindow")
        self.resize(1280, 720)
        self.playback = playback
        self.undo_stack = QUndoStack(self)
        self.undo_stack.cleanChanged.connect(self._update_title)
        self.model = TranscriptModel(transcript, self)
        self.list = SegmentListView(self)
        self.list.setModel(self.model)
        self.list.delegate.textCommitted.connect(self._on_text_committed)
        self.list.clicked.connect(self._on_clicked)
        self._follow = True
        self._matches: list[int] = []
        self._match_at = -1
        self._saving = False
        self._build_player()
        self._build_find_bar()
        self.speakers = SpeakersPanel(self)
        self.speakers.playRequested.connect(self.playback.play_range)
        self.speakers.renameRequested.connect(self.rename_speaker)
        self.banner = NotificationBanner(self)
        self.banner.actionTriggered.connect(self._on_banner_action)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.list)
        split.addWidget(self.speakers)
        split.setStretchFactor(0, 1)
        split.setSizes([930, 330])
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.banner)
        layout.addWidget(self.player_bar)
        layout.addWidget(self.no_sound)
        layout.addWidget(split, 1)
        layout.addWidget(self.find_bar)
        self.setCentralWidget(central)
        self._build_actions()
        self._build_menus()
        self._wire_playback()
        self.model.transcriptChanged.connect(self._on_transcript_changed)
        self._on_transcript_changed()
        self._update_title()
        if transcript.segments:
            self.list.setCurrentIndex(self.model.index(0))

    # --- construction ---------------------------------------------------------------------------------
    def _build_player(self) -> None:
        bar = QWidget(self)
        bar.setObjectName("playerBar")
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 0, 0, 4)
        self.play_button = QToolButton(bar)
        self.play_button.setObjectName("playButton")
        self.play_button.setText("Play")
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.play_button.setMinimumWidth(80)
        self.play_button.clicked.connect(self.playback.toggle)
        self.time_label = QLabel("00:00 / 00:00", bar)
        self.time_label.setMinimumWidth(110)
        self.seek_bar = QSlider(Qt.Orientation.Horizontal, bar)
        self.seek_bar.setObjectName("seekBar")
        self.seek_bar.setRange(0, 0)
        self.seek_bar.sliderMoved.connect(self._on_seek_bar)
        self.rate_box = QComboBox(bar)
        self.rate_box.setObjectName("rateBox")
        self.rate_box.setToolTip("Playback speed")
        for rate in RATES:
            self.rate_box.addItem(f"{rate:g}×", rate)
        self.rate_box.setCurrentIndex(RATES.index(1.0))
        self.rate_box.currentIndexChanged.connect(self._on_rate_chosen)
        self.volume = QSlider(Qt.Orientation.Horizontal, bar)
        self.volume.setObjectName("volume")
        self.volume.setToolTip("Volume")
        self.volume.setRange(0, 100)
        self.volume.setValue(round(self.playback.volume * 100))
        self.volume.setMaximumWidth(110)
        self.volume.valueChanged.connect(self._on_volume)
        self.follow_box = QPushButton("Follow playback", bar)
        self.follow_box.setCheckable(True)
        self.follow_box.setChecked(True)
        self.follow_box.setToolTip("Keep the playing segment in view")
        self.follow_box.toggled.connect(self._on_follow_toggled)
        row.addWidget(self.play_button)
        row.addWidget(self.time_label)
        row.addWidget(self.seek_bar, 1)
        row.addWidget(QLabel("Speed", bar))
        row.addWidget(self.rate_box)
        row.addWidget(QLabel("Volume", bar))
        row.addWidget(self.volume)
        row.addWidget(self.follow_box)
        self.player_bar = bar
        self.no_sound = QLabel(NO_SOUND_TEXT, self)
        self.no_sound.setObjectName("noSoundLine")
        self.no_sound.setWordWrap(True)
        self.no_sound.setVisible(self.playback.silent)
        self.playback.silentChanged.connect(self.no_sound.setVisible)

    def _build_find_bar(self) -> None:
        bar = QWidget(self)
        bar.setObjectName("findBar")
        row = QHBoxLayout(bar)
        row.setContentsMargins(0, 4, 0, 4)
        self.find_edit = QLineEdit(bar)
        self.find_edit.setObjectName("findEdit")
        self.find_edit.setPlaceholderText("Find in this transcript")
        self.find_edit.setClearButtonEnabled(True)
        self.find_edit.textChanged.connect(self._on_find_text)
        self.find_edit.returnPressed.connect(self.find_next)
        self.find_count = QLabel("", bar)
        prev_button = QPushButton("Previous", bar)
        prev_button.clicked.connect(self.find_previous)
        next_button = QPushButton("Next", bar)
        next_button.clicked.connect(self.find_next)
        close_button = QToolButton(bar)
        close_button.setText("✕")
        close_button.setToolTip("Close the find bar (Esc)")
        close_button.clicked.connect(self.close_find)
        row.addWidget(QLabel("Find:", bar))
        row.addWidget(self.find_edit, 1)
        row.addWidget(self.find_count)
        row.addWidget(prev_button)
        row.addWidget(next_button)
        row.addWidget(close_button)
        bar.hide()
        self.find_bar = bar

    def _action(self, text: str, slot: Callable[[], object], shortcut: object = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut if isinstance(shortcut, QKeySequence) else QKeySequence(shortcut))
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        self.save_action = self._action("Save", self.save, QKeySequence.StandardKey.Save)
        self.close_action = self._action("Close", self.close, QKeySequence.StandardKey.Close)
        self.undo_action = self.undo_stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence.StandardKey.Undo)
        self.redo_action = self.undo_stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcut(QKeySequence.StandardKey.Redo)
        self.edit_action = self._action("Edit text", self.edit_selected, "F2")
        self.split_action = self._action("Split at cursor", self.split_at_cursor, "Ctrl+Shift+Return")
        self.merge_action = self._action("Merge with next", self.merge_selected, "Ctrl+M")
        self.speaker_action = self._action("Change speaker…", self.change_speaker, "Ctrl+Shift+K")
        self.rename_action = self._action("Rename speakers…", self.rename_speakers, "Ctrl+Shift+R")
        self.find_action = self._action("Find…", self.open_find, QKeySequence.StandardKey.Find)
        self.find_next_action = self._action("Find next", self.find_next, QKeySequence.StandardKey.FindNext)
        self.play_action = self._action("Play/Pause", self.playback.toggle, "Space")
        self.back_action = self._action("Back 5 s", self._seek_back, "Left")
        self.forward_action = self._action("Forward 5 s", self._seek_forward, "Right")
        self.slower_action = self._action("Slower", self._slower, "Ctrl+[")
        self.faster_action = self._action("Faster", self._faster, "Ctrl+]")
        self.locate_action = self._action("Locate recording…", self.locate_recording)
        self.export_actions: dict[str, QAction] = {}
        for fmt, label in EXPORT_FORMATS:
            action = QAction(f"{label} (.{fmt})…", self)
            action.triggered.connect(self._exporter(fmt))
            self.export_actions[fmt] = action
        for action in (self.play_action, self.back_action, self.forward_action):
            # the list's own keys must not take these; an open editor still gets its spaces and arrows
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.save_action)
        export_menu = file_menu.addMenu("Export")
        export_menu.addActions(list(self.export_actions.values()))
        file_menu.addAction(self.locate_action)
        file_menu.addSeparator()
        file_menu.addAction(self.close_action)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.undo_action, self.redo_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.edit_action, self.split_action, self.merge_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.speaker_action, self.rename_action])
        edit_menu.addSeparator()
        edit_menu.addActions([self.find_action, self.find_next_action])
        play_menu = bar.addMenu("&Playback")
        play_menu.addActions([self.play_action, self.back_action, self.forward_action])
        play_menu.addSeparator()
        play_menu.addActions([self.slower_action, self.faster_action])

    def _wire_playback(self) -> None:
        pb = self.playback
        pb.positionChanged.connect(self._on_position)
        pb.durationChanged.connect(self._on_duration)
        pb.playingChanged.connect(self._on_playing)
        pb.sourceMissing.connect(self._on_source_missing)
        pb.sourceChanged.connect(self._on_source_found)
        pb.problem.connect(self._on_playback_problem)
        if pb.original is not None and pb.source is None:
            self._on_source_missing(str(pb.original))

    # --- state shown -----------------------------------------------------------------------------------
    @property
    def transcript(self) -> Transcript:
        transcript = self.model.transcript
        assert transcript is not None
        return transcript

    @property
    def dirty(self) -> bool:
        return not self.undo_stack.isClean()

    @Slot()
    def _update_title(self) -> None:
        self.setWindowTitle(f"{'* ' if self.dirty else ''}{self._title} — WhisperDesk")
        self.save_action.setEnabled(self.dirty and not self._saving)

    @Slot()
    def _on_transcript_changed(self) -> None:
        self.speakers.set_evidence(speaker_evidence(self.transcript), self.model.speaker_colour)
        has_speakers = bool(self.transcript.speakers)
        self.rename_action.setEnabled(has_speakers)
        if self.find_bar.isVisible():
            self._on_find_text(self.find_edit.text())

    def _show_transcript(self, transcript: Transcript, row: int) -> None:
        self.model.set_transcript(transcript)
        self.model.set_position(self.playback.position)
        if 0 <= row < self.model.rowCount():
            index = self.model.index(row)
            self.list.setCurrentIndex(index)
            self.list.scrollTo(index)

    def selected_row(self) -> int:
        index = self.list.currentIndex()
        return index.row() if index.isValid() else -1

    # --- editing ---------------------------------------------------------------------------------------
    def apply(self, label: str, edit: Callable[[Transcript], Transcript], row: int) -> bool:
        """Make an edit undoable; a refused edit is said in the banner, not raised."""
        before = self.transcript
        try:
            after = edit(before)
        except EditError as exc:
            self.banner.show_message("Not changed", str(exc), "warning")
            return False
        if after is before:
            return False
        self.undo_stack.push(TranscriptEdit(self, label, before, after, row))
        return True

    @Slot(int, str)
    def _on_text_committed(self, row: int, text: str) -> None:
        self.apply("Edit text", lambda t: edit_text(t, row, text), row)

    @Slot()
    def edit_selected(self) -> None:
        row = self.selected_row()
        if row >= 0:
            self.list.edit(self.model.index(row))

    @Slot()
    def split_at_cursor(self) -> None:
        """Split the segment being edited at the editor's cursor (typed changes are kept, in one undo step)."""
        opened = self.list.delegate.open_editor()
        if opened is None:
            self.edit_selected()
            self.statusBar().showMessage(
                "Put the cursor where the segment should split, then split again", 5000
            )
            return
        row, editor = opened
        text = editor.toPlainText()
        cursor = editor.textCursor().position()
        self.list.closePersistentEditor(self.model.index(row))
        self.list.setFocus()
        prefix = " ".join(text[:cursor].split())
        self.undo_stack.beginMacro("Split segment")
        self.apply("Edit text", lambda t: edit_text(t, row, text), row)
        seg_text = self.transcript.segments[row].text
        lead = len(seg_text) - len(seg_text.lstrip())
        self.apply("Split segment", lambda t: split_segment(t, row, lead + len(prefix)), row + 1)
        self.undo_stack.endMacro()

    @Slot()
    def merge_selected(self) -> None:
        row = self.selected_row()
        if row >= 0:
            self.apply("Merge with next", lambda t: merge_with_next(t, row), row)

    @Slot()
    def change_speaker(self) -> None:
        row = self.selected_row()
        if row < 0:
            return
        names = self.transcript.speakers
        current = self.transcript.segments[row].speaker or ""
        choices = names or ["Speaker 1"]
        name, ok = QInputDialog.getItem(
            self,
            "Change speaker",
            "Who says this? Pick a speaker or type a new name:",
            choices,
            choices.index(current) if current in choices else 0,
            True,
        )
        if ok and name.strip():
            self.set_segment_speaker(row, name)

    def set_segment_speaker(self, row: int, name: str) -> bool:
        return self.apply("Change speaker", lambda t: set_speaker(t, row, name), row)

    @Slot(str)
    def rename_speaker(self, old: str) -> None:
        """Rename one speaker everywhere (from the speaker panel)."""
        name, ok = QInputDialog.getText(self, "Rename speaker", f"New name for {old} everywhere:", text=old)
        if ok and name.strip():
            self.rename_everywhere(old, name)

    def rename_everywhere(self, old: str, new: str) -> bool:
        if not self.apply(f"Rename {old}", lambda t: rename_speaker(t, old, new), self.selected_row()):
            return False
        first = next((label for label, name in self._named.items() if name == old), old)
        self._named[first] = " ".join(new.split())
        return True

    def rename_and_save(self, names: dict[str, str]) -> None:
        """A rename asked for elsewhere (the queue's dialog) while this window is open: one undoable step
        here, then saved, so this window's next save is not refused as stale and no correction is lost."""
        self.undo_stack.beginMacro("Rename speakers")
        for old, new in names.items():
            self.rename_everywhere(old, new)
        self.undo_stack.endMacro()
        self.save()

    @Slot()
    def rename_speakers(self) -> None:
        """The rename dialog with evidence: share of talk time and lines to play for every speaker."""
        evidence = speaker_evidence(self.transcript)
        if not evidence:
            return
        dialog = SpeakerNamesDialog(
            self._title, [e.name for e in evidence], self, evidence=evidence, colour=self.model.speaker_colour
        )
        dialog.playRequested.connect(self.playback.play_range)
        accepted = dialog.exec() == SpeakerNamesDialog.DialogCode.Accepted
        changes = dialog.changes()
        dialog.deleteLater()
        if not accepted or not changes:
            return
        self.undo_stack.beginMacro("Rename speakers")
        for old, new in changes.items():
            self.rename_everywhere(old, new)
        self.undo_stack.endMacro()

    # --- saving and export -----------------------------------------------------------------------------
    @Slot()
    def save(self) -> None:
        if self.dirty and not self._saving:
            self._saving = True
            self._update_title()
            self.statusBar().showMessage("Saving…")
            speakers = set(self.transcript.speakers)  # renames undone since are not names given
            self._saving_named = {
                label: name
                for label, name in self._named.items()
                if name != label and name in speakers and label not in speakers
            }
            self._saving_at = self.undo_stack.index()
            self.saveRequested.emit(self.job_id, self.transcript, False)

    @Slot(int, str)
    def on_saved(self, job_id: int, summary: str) -> None:
        if job_id != self.job_id:
            return
        self._saving = False
        if self.undo_stack.index() == self._saving_at:  # edits made while saving are still unsaved
            self.undo_stack.setClean()
        self._update_title()
        self.statusBar().showMessage(summary, 8000)
        named, self._saving_named, self._named = self._saving_named, {}, {}
        if named:
            self.speakersNamed.emit(self.job_id, named)
        self.saveSettled.emit()

    @Slot(int, object)
    def on_conflicts(self, job_id: int, paths: object) -> None:
        """Outputs changed outside the app since WhisperDesk wrote them: overwrite only if the person says so."""
        if job_id != self.job_id:
            return
        self._keep_open = True  # closing after Save waits for this answer, in this window
        files = [Path(str(p)) for p in paths] if isinstance(paths, Sequence) else []
        names = "\n".join(f"  {p}" for p in files[:8])
        if self._ask(
            self,
            "Files changed outside WhisperDesk",
            f"These transcript files were changed outside WhisperDesk since they were written:\n{names}\n\n"
            "Overwrite them with the corrected transcript? (No keeps them as they are; the correction is "
            "still saved in the library and in the files nobody changed.)",
        ):
            self.saveRequested.emit(self.job_id, self.transcript, True)
            return
        self._saving = False
        self._update_title()
        self.statusBar().showMessage("Saved, except the files changed outside WhisperDesk", 8000)
        self.saveSettled.emit()

    @Slot(int, str)
    def on_save_failed(self, job_id: int, message: str) -> None:
        if job_id != self.job_id:
            return
        self._saving = False
        self._update_title()
        self.statusBar().clearMessage()
        self.banner.show_message("Not saved", message, "error")
        self._keep_open = True
        self.saveSettled.emit()

    def _exporter(self, fmt: str) -> Callable[[], None]:
        def run() -> None:
            self.export(fmt)

        return run

    def export(self, fmt: str, path: str | None = None) -> None:
        """Export to a file the person names; the dialog starts where the job's transcripts were written,
        showing files of this format, and a name typed without an extension gets this format's."""
        if path is None:
            base = self.playback.original or Path(self._title)
            folder = self.export_folder if self.export_folder is not None else base.parent
            target = folder / f"{base.stem}.{fmt}"
            if target.exists():  # most likely the job's own output: suggest a name beside it instead
                target = target.with_name(f"{base.stem} (corrected).{fmt}")
            label = dict(EXPORT_FORMATS).get(fmt, fmt.upper())
            path = self._choose_save(self, f"Export as {label}", str(target), f"{label} (*.{fmt})")
        if path:
            if not Path(path).suffix:
                path = f"{path}.{fmt}"
            self._exporting = path
            self.exportRequested.emit(self.transcript, fmt, path)

    @Slot(str)
    def on_exported(self, path: str) -> None:
        """Say where this window's export was written (the service tells every window of every export)."""
        if path == self._exporting:
            self._exporting = ""
            self.statusBar().showMessage(f"Exported to {path}", 15000)

    # --- playback ---------------------------------------------------------------------------------------
    @Slot(float)
    def _on_position(self, seconds: float) -> None:
        row = self.model.set_position(seconds)
        if not self.seek_bar.isSliderDown():
            self.seek_bar.setValue(round(seconds * 10))
        self.time_label.setText(f"{stamp(seconds)} / {stamp(self.playback.duration)}")
        if (
            row is not None
            and self._follow
            and self.playback.playing
            and self.list.state() != SegmentListView.State.EditingState
        ):
            self.list.scrollTo(self.model.index(row))

    @Slot(float)
    def _on_duration(self, seconds: float) -> None:
        self.seek_bar.setRange(0, round(seconds * 10))
        self.time_label.setText(f"{stamp(self.playback.position)} / {stamp(seconds)}")

    @Slot(bool)
    def _on_playing(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))

    @Slot(int)
    def _on_seek_bar(self, value: int) -> None:
        self.playback.seek(value / 10)

    @Slot(int)
    def _on_rate_chosen(self, i: int) -> None:
        self.playback.set_rate(float(self.rate_box.itemData(i)))

    @Slot(int)
    def _on_volume(self, value: int) -> None:
        self.playback.set_volume(value / 100)

    @Slot(bool)
    def _on_follow_toggled(self, on: bool) -> None:
        self._follow = on

    @Slot()
    def _seek_back(self) -> None:
        self.playback.seek_by(-SEEK_STEP_S)

    @Slot()
    def _seek_forward(self) -> None:
        self.playback.seek_by(SEEK_STEP_S)

    @Slot()
    def _slower(self) -> None:
        self.rate_box.setCurrentIndex(max(0, self.rate_box.currentIndex() - 1))

    @Slot()
    def _faster(self) -> None:
        self.rate_box.setCurrentIndex(min(len(RATES) - 1, self.rate_box.currentIndex() + 1))

    @Slot(QModelIndex)
    def _on_clicked(self, index: QModelIndex) -> None:
        """A click on a word seeks to that word; elsewhere in the row, to the segment's start."""
        if not index.isValid() or self.list.state() == SegmentListView.State.EditingState:
            return
        segment = self.model.segment(index.row())
        word = self.list.clicked_word
        self.playback.seek(segment.words[word].start if word is not None else segment.start)

    def seek_to(self, seconds: float, *, play: bool = False) -> None:
        """Show the segment at ``seconds`` and move the player there (a search result opens here)."""
        row = self.model.set_position(seconds)
        if row is not None:
            index = self.model.index(row)
            self.list.setCurrentIndex(index)
            self.list.scrollTo(index, SegmentListView.ScrollHint.PositionAtCenter)
        if play:
            self.playback.play_from(seconds)
        else:
            self.playback.seek(seconds)

    @Slot(str)
    def _on_source_missing(self, tried: str) -> None:
        self.banner.show_message(
            "Recording not found",
            f"The recording was not found at {tried}, so it cannot be played; the transcript is all here. "
            "If it was moved or renamed, locate it and WhisperDesk will remember where it is.",
            "warning",
            LOCATE_ACTION,
            "Locate…",
        )
        self.player_bar.setEnabled(False)

    @Slot(str)
    def _on_source_found(self, path: str) -> None:
        self.player_bar.setEnabled(True)
        if self.banner.title == "Recording not found":
            self.banner.dismiss()

    @Slot(str)
    def _on_playback_problem(self, message: str) -> None:
        self.banner.show_message("Cannot play", message, "warning")

    @Slot(str)
    def _on_banner_action(self, action_id: str) -> None:
        if action_id == LOCATE_ACTION:
            self.locate_recording()

    @Slot()
    def locate_recording(self) -> None:
        original = self.playback.original
        folder = str(original.parent) if original is not None and original.parent.is_dir() else ""
        found = self._choose_open(
            self,
            f"Where is {original.name if original else 'the recording'}?",
            folder,
            "Audio and video (*);;All files (*)",
        )
        if found:
            self.playback.locate(found)

    # --- find in this transcript ----------------------------------------------------------------------
    @Slot()
    def open_find(self) -> None:
        self.find_bar.show()
        self.find_edit.setFocus()
        self.find_edit.selectAll()

    @Slot()
    def close_find(self) -> None:
        self.find_edit.clear()
        self.find_bar.hide()
        self.list.setFocus()

    @Slot(str)
    def _on_find_text(self, text: str) -> None:
        self._matches = self.model.set_match(text)
        self._match_at = -1
        self.find_count.setText(f"{len(self._matches)} found" if text else "")

    @Slot()
    def find_next(self) -> None:
        self._step_match(1)

    @Slot()
    def find_previous(self) -> None:
        self._step_match(-1)

    def _step_match(self, step: int) -> None:
        if not self.find_bar.isVisible():
            self.open_find()
            return
        if not self._matches:
            return
        self._match_at = (self._match_at + step) % len(self._matches)
        index = self.model.index(self._matches[self._match_at])
        self.list.setCurrentIndex(index)
        self.list.scrollTo(index, SegmentListView.ScrollHint.PositionAtCenter)
        self.find_count.setText(f"{self._match_at + 1} of {len(self._matches)}")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape and self.find_bar.isVisible():
            self.close_find()
            return
        super().keyPressEvent(event)

    # --- closing ----------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self.dirty and not self._discard and not self._may_close_unsaved():
            event.ignore()
            return
        if self.dirty:
            log.warning("%s: unsaved corrections discarded while closing", self._title)
        self.playback.pause()
        self.banner.dismiss()
        self.closed.emit(self.job_id)
        event.accept()

    def discard_and_close(self) -> None:
        """Close without asking, unsaved corrections dropped (the app is shutting down; nobody may answer)."""
        self._discard = True
        self.close()

    def _may_close_unsaved(self) -> bool:
        """Save / Discard / Cancel. Save closes only once the save is done; one that fails, or that found
        files changed outside the app (an answer is needed here), keeps the window open."""
        answer = self._ask_unsaved(
            self, "Save your corrections?", f"Your corrections to {self._title} are not saved yet."
        )
        if answer == DISCARD:
            return True
        if answer != SAVE:
            return False
        return self.save_and_wait()

    def save_and_wait(self) -> bool:
        """Save now and wait (events keep running) until the service answers; True when all is saved."""
        self._keep_open = False
        self.save()
        if self._saving:
            loop = QEventLoop(self)
            self.saveSettled.connect(loop.quit)
            loop.exec()
            self.saveSettled.disconnect(loop.quit)
            loop.deleteLater()
        return not self.dirty and not self._keep_open
