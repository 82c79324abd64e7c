"""Naming speakers with evidence: the rename dialog and the transcript view's speaker list.

"Speaker 1" and "Speaker 2" mean nothing until you hear them. So both show, per speaker, their share of
the talk time and two or three of their longest lines, each with a play button that plays exactly that
stretch (``playRequested(start, end)``, connected to the playback service by whoever owns one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.speakers.evidence import SpeakerEvidence
from whisperdesk.ui.transcript_model import stamp

ColourFn = Callable[[str | None], QColor | None]
LINE_CHARS = 110


def _short(text: str) -> str:
    return text if len(text) <= LINE_CHARS else text[: LINE_CHARS - 1].rstrip() + "…"


def talk_time(ev: SpeakerEvidence) -> str:
    """``42 % of the talk · 03:10``."""
    return f"{ev.share * 100:.0f} % of the talk · {stamp(ev.seconds)}"


class EvidenceBlock(QWidget):
    """One speaker's evidence: colour, share of talk time, and lines each with a play button."""

    playRequested = Signal(float, float)

    def __init__(
        self,
        ev: SpeakerEvidence,
        colour: QColor | None,
        parent: QWidget | None = None,
        *,
        header: bool = True,
    ) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        self.header = QHBoxLayout()
        swatch = QLabel(self)
        swatch.setFixedSize(12, 12)
        swatch.setStyleSheet(f"background:{(colour or QColor('gray')).name()}; border-radius:6px;")
        self.header.addWidget(swatch)
        if header:
            name = QLabel(f"<b>{_esc(ev.name)}</b>", self)
            name.setStyleSheet(f"color:{(colour or QColor('black')).name()};")
            self.header.addWidget(name)
        share = QLabel(talk_time(ev), self)
        share.setObjectName("talkShare")
        share.setEnabled(False)
        self.header.addWidget(share)
        self.header.addStretch(1)
        layout.addLayout(self.header)
        self.play_buttons: list[QToolButton] = []
        for line in ev.lines:
            row = QHBoxLayout()
            button = QToolButton(self)
            button.setText("▶")
            button.setToolTip(f"Play {stamp(line.start)}–{stamp(line.end)}")
            button.setAutoRaise(True)
            button.clicked.connect(self._player(line.start, line.end))
            self.play_buttons.append(button)
            text = QLabel(
                f"<span style='color:gray'>{stamp(line.start)}</span> {_esc(_short(line.text))}", self
            )
            text.setWordWrap(header)  # the narrow speaker list wraps; the dialog is wide enough for a line
            text.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            row.addWidget(button, 0, Qt.AlignmentFlag.AlignVCenter)
            row.addWidget(text, 1, Qt.AlignmentFlag.AlignVCenter)
            layout.addLayout(row)

    def _player(self, start: float, end: float) -> Callable[[], None]:
        def play() -> None:
            self.playRequested.emit(start, end)

        return play


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SpeakerNamesDialog(QDialog):
    """One line edit per speaker, prefilled with the current name; :meth:`changes` gives old → new.

    With ``evidence`` each speaker also shows their share of talk time and lines to play."""

    playRequested = Signal(float, float)

    def __init__(
        self,
        file_name: str,
        names: list[str],
        parent: QWidget | None = None,
        *,
        evidence: Sequence[SpeakerEvidence] = (),
        colour: ColourFn | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Speakers in {file_name}")
        self.edits: dict[str, QLineEdit] = {}
        self.blocks: dict[str, EvidenceBlock] = {}
        by_name = {e.name: e for e in evidence}
        outer = QVBoxLayout(self)
        if by_name:
            hint = QLabel("Listen to a few lines of each speaker, then type their names.", self)
            outer.addWidget(hint)
        form = QFormLayout()
        for name in names:
            edit = QLineEdit(name, self)
            edit.setPlaceholderText(name)
            self.edits[name] = edit
            form.addRow(f"{name}:", edit)
            if name in by_name:
                block = EvidenceBlock(by_name[name], colour(name) if colour else None, self, header=False)
                block.playRequested.connect(self.playRequested)
                self.blocks[name] = block
                form.addRow("", block)
        outer.addLayout(form)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        outer.addWidget(buttons)
        if by_name:
            self.resize(max(760, self.sizeHint().width()), self.sizeHint().height())

    def changes(self) -> dict[str, str]:
        """Names the user changed (blank fields keep the old name)."""
        out = {}
        for old, edit in self.edits.items():
            new = " ".join(edit.text().split())
            if new and new != old:
                out[old] = new
        return out


class SpeakersPanel(QScrollArea):
    """The transcript view's speaker list: evidence per speaker and a Rename button each.

    Signals: playRequested(float start, float end), renameRequested(str name)."""

    playRequested = Signal(float, float)
    renameRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("speakersPanel")
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setMinimumWidth(260)
        self.blocks: dict[str, EvidenceBlock] = {}
        self._key: tuple[object, ...] = ()
        self.set_evidence([], None)

    def set_evidence(self, evidence: Sequence[SpeakerEvidence], colour: ColourFn | None) -> None:
        key = tuple(evidence)
        if key == self._key and self.widget() is not None:
            return
        self._key = key
        inner = QWidget(self)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(8, 4, 8, 4)
        title = QLabel("<b>Speakers</b>", inner)
        layout.addWidget(title)
        self.blocks = {}
        if not evidence:
            none = QLabel(
                "No speaker labels in this transcript. Transcribe with speaker labels (Add files with speaker "
                "labels…) to see who said what.",
                inner,
            )
            none.setWordWrap(True)
            none.setEnabled(False)
            layout.addWidget(none)
        for ev in evidence:
            block = EvidenceBlock(ev, colour(ev.name) if colour else None, inner)
            rename = QPushButton("Rename…", block)
            rename.setToolTip(f"Rename {ev.name} everywhere in this transcript")
            rename.clicked.connect(self._renamer(ev.name))
            block.header.insertWidget(block.header.count() - 1, rename)
            block.playRequested.connect(self.playRequested)
            self.blocks[ev.name] = block
            layout.addWidget(block)
            layout.addSpacing(8)
        layout.addStretch(1)
        old = self.takeWidget()
        if old is not None:
            old.deleteLater()
        self.setWidget(inner)

    def _renamer(self, name: str) -> Callable[[], None]:
        def rename() -> None:
            self.renameRequested.emit(name)

        return rename
