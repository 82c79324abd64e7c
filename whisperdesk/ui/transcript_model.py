"""The list model behind the transcript view: one row per segment of a core Transcript.

Why a model and not widgets: a two-hour recording has about 2,000 segments; a row is only laid out and
painted when it scrolls into view (the view uses batched layout), so opening costs what one screenful
costs. Edits replace the whole Transcript (the edits are pure functions); :meth:`set_transcript` compares
old and new segments by identity and tells the view only about the rows that changed, so an edit in the
middle of a long file neither resets the scroll position nor lays everything out again.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor

from whisperdesk.core.library.edits import segment_at, word_at
from whisperdesk.core.transcript import Segment, Transcript

SegmentRole = Qt.ItemDataRole.UserRole + 1  # the core Segment
StartRole = Qt.ItemDataRole.UserRole + 2  # float seconds
SpeakerRole = Qt.ItemDataRole.UserRole + 3  # str or None
SpeakerColorRole = Qt.ItemDataRole.UserRole + 4  # QColor or None
CurrentRole = Qt.ItemDataRole.UserRole + 5  # bool: this segment is playing
CurrentWordRole = Qt.ItemDataRole.UserRole + 6  # int or None: the word playing in this segment
MatchRole = Qt.ItemDataRole.UserRole + 7  # str: the find bar's text while this row matches it

# Colours that stay apart from each other and readable as text on a light or dark base (Okabe–Ito based).
SPEAKER_COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8A6D00", "#7B52AE")


def speaker_colour(names: list[str]) -> Callable[[str | None], QColor | None]:
    """Each speaker's colour by its place among the file's speakers (the first to speak is blue)."""
    colours = {n: QColor(SPEAKER_COLOURS[i % len(SPEAKER_COLOURS)]) for i, n in enumerate(names)}

    def colour(name: str | None) -> QColor | None:
        return colours.get(name) if name is not None else None

    return colour


def stamp(seconds: float) -> str:
    """``1:02:03`` or ``02:03``: the view's time column and the search results."""
    total = max(0, int(seconds))
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class TranscriptModel(QAbstractListModel):
    """Signals: transcriptChanged() after every change of the transcript (edits, undo, load)."""

    transcriptChanged = Signal()

    def __init__(self, transcript: Transcript | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._transcript = transcript
        self._segments: list[Segment] = list(transcript.segments) if transcript else []
        self._colours: dict[str, QColor] = {}
        self._current: int | None = None
        self._current_word: int | None = None
        self._match = ""
        self._recolour()

    # --- the transcript ---------------------------------------------------------------------------------
    @property
    def transcript(self) -> Transcript | None:
        return self._transcript

    def segment(self, row: int) -> Segment:
        return self._segments[row]

    def set_transcript(self, transcript: Transcript) -> None:
        """Show ``transcript``, signalling only the rows that differ from what is shown."""
        old, new = self._segments, list(transcript.segments)
        self._transcript = transcript
        if not old or not new:
            self.beginResetModel()
            self._segments = new
            self._recolour()
            self.endResetModel()
            self.transcriptChanged.emit()
            return
        head = 0
        while head < min(len(old), len(new)) and old[head] is new[head]:
            head += 1
        tail = 0
        while tail < min(len(old), len(new)) - head and old[-1 - tail] is new[-1 - tail]:
            tail += 1
        old_mid, new_mid = len(old) - head - tail, len(new) - head - tail
        speakers_before = list(self._colours)
        common = min(old_mid, new_mid)
        if old_mid > new_mid:
            self.beginRemoveRows(QModelIndex(), head + common, head + old_mid - 1)
            self._segments = new
            self.endRemoveRows()
        elif new_mid > old_mid:
            self.beginInsertRows(QModelIndex(), head + common, head + new_mid - 1)
            self._segments = new
            self.endInsertRows()
        else:
            self._segments = new
        self._recolour()
        if list(self._colours) != speakers_before and self._segments:  # a rename recolours every row
            self.dataChanged.emit(self.index(0), self.index(len(self._segments) - 1))
        elif common:
            self.dataChanged.emit(self.index(head), self.index(head + common - 1))
        self.transcriptChanged.emit()

    def _recolour(self) -> None:
        """Each speaker keeps the colour of its place among the file's speakers (first to speak: blue)."""
        names = self._transcript.speakers if self._transcript else []
        self._colours = {n: QColor(SPEAKER_COLOURS[i % len(SPEAKER_COLOURS)]) for i, n in enumerate(names)}
        # (speaker_colour() gives the same colours to views that have no model, e.g. the queue's dialog)

    def speaker_colour(self, name: str | None) -> QColor | None:
        return self._colours.get(name) if name is not None else None

    # --- playback and find -----------------------------------------------------------------------------
    @property
    def current_row(self) -> int | None:
        return self._current

    @property
    def current_word(self) -> int | None:
        return self._current_word

    def set_position(self, seconds: float) -> int | None:
        """Mark the segment (and word) playing at ``seconds``; returns the current row."""
        row = segment_at(self._segments, seconds)
        word = word_at(self._segments[row], seconds) if row is not None else None
        if row == self._current and word == self._current_word:
            return row
        previous = self._current
        self._current, self._current_word = row, word
        for r in {previous, row} - {None}:
            if r is not None and r < len(self._segments):
                self.dataChanged.emit(self.index(r), self.index(r), [CurrentRole, CurrentWordRole])
        return row

    def set_match(self, text: str) -> list[int]:
        """Remember the find bar's text; returns the rows whose text contains it (case-insensitive)."""
        self._match = text
        needle = text.casefold()
        rows = [i for i, s in enumerate(self._segments) if needle and needle in s.text.casefold()]
        if self._segments:
            self.dataChanged.emit(self.index(0), self.index(len(self._segments) - 1), [MatchRole])
        return rows

    # --- Qt's model interface -------------------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        if parent is not None and parent.isValid():
            return 0
        return len(self._segments)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEditable

    def data(
        self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        if not index.isValid() or index.row() >= len(self._segments):
            return None
        row = index.row()
        seg = self._segments[row]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return seg.text.strip()
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{stamp(seg.start)}–{stamp(seg.end)}" + (f" · {seg.speaker}" if seg.speaker else "")
        if role == SegmentRole:
            return seg
        if role == StartRole:
            return seg.start
        if role == SpeakerRole:
            return seg.speaker
        if role == SpeakerColorRole:
            return self.speaker_colour(seg.speaker)
        if role == CurrentRole:
            return row == self._current
        if role == CurrentWordRole:
            return self._current_word if row == self._current else None
        if role == MatchRole:
            return self._match if self._match and self._match.casefold() in seg.text.casefold() else ""
        return None
