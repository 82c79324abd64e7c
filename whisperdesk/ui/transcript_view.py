"""The list of segments: time, speaker (in the speaker's colour) and wrapped text, painted by one delegate.

Why one delegate and not a widget per segment: rows are laid out in batches as the view needs them and
painted only when visible, so a 2,000-segment transcript opens as fast as a short one. The text is laid
out with QTextLayout both to measure and to paint a row, so heights and painting agree, and the playing
word and the find bar's matches are drawn as selections on the same layout.

Editing a row's text opens a plain-text editor over the text column; Enter commits, Shift+Enter and
Escape behave as in any editor. The delegate does not write to the model: it hands the new text to
``textCommitted`` so the window can push an undoable edit.
"""

from __future__ import annotations

import weakref

from PySide6.QtCore import (
    QAbstractItemModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QPointF,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
    Slot,
)
from PySide6.QtGui import (
    QColor,
    QFont,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPalette,
    QTextCharFormat,
    QTextLayout,
    QTextOption,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QPlainTextEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from whisperdesk.core.library.edits import word_spans
from whisperdesk.core.transcript import Segment
from whisperdesk.ui.transcript_model import (
    CurrentRole,
    CurrentWordRole,
    MatchRole,
    SegmentRole,
    SpeakerColorRole,
    stamp,
)

PAD_X, PAD_Y = 8, 5
TIME_WIDTH = 62
SPEAKER_WIDTH = 128
BAR_WIDTH = 4
PLAYING_COLOUR = QColor(255, 236, 150)
RETRY_MS = 20
MAX_TRIES = 250  # 5 s: far more than laying out any real transcript takes


class SegmentEditor(QPlainTextEdit):
    """The in-place editor: Enter commits, Shift+Enter is ignored (a segment is one paragraph)."""

    commit = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self.commit.emit()
            return
        super().keyPressEvent(event)


class SegmentDelegate(QStyledItemDelegate):
    """Paints a segment row; ``textCommitted(row, text)`` when an in-place edit is confirmed."""

    textCommitted = Signal(int, str)

    def __init__(self, view: QListView) -> None:
        super().__init__(view)
        self._view = view
        self._heights: dict[int, tuple[Segment, int, int]] = {}  # id(segment) -> (segment, width, height)
        self._editor: weakref.ref[SegmentEditor] | None = None
        self._editor_row = -1

    # --- geometry --------------------------------------------------------------------------------------
    def _text_width(self) -> int:
        return max(80, self._view.viewport().width() - TIME_WIDTH - SPEAKER_WIDTH - 3 * PAD_X - BAR_WIDTH)

    def _text_rect(self, rect: QRect) -> QRect:
        left = rect.left() + BAR_WIDTH + PAD_X + TIME_WIDTH + SPEAKER_WIDTH + PAD_X
        return QRect(left, rect.top() + PAD_Y, rect.right() - left - PAD_X, rect.height() - 2 * PAD_Y)

    def _layout(self, text: str, font: QFont, width: int) -> QTextLayout:
        layout = QTextLayout(text, font)
        option = QTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        layout.setTextOption(option)
        layout.beginLayout()
        y = 0.0
        while True:
            line = layout.createLine()
            if not line.isValid():
                break
            line.setLineWidth(width)
            line.setPosition(QPointF(0, y))
            y += line.height()
        layout.endLayout()
        return layout

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        segment = index.data(SegmentRole)
        width = self._text_width()
        if not isinstance(segment, Segment):
            return QSize(width, 24)
        cached = self._heights.get(id(segment))
        if cached is not None and cached[0] is segment and cached[1] == width:
            return QSize(width, cached[2])
        layout = self._layout(segment.text.strip(), self._view.font(), width)
        height = int(layout.boundingRect().height() + 0.999) + 2 * PAD_Y
        height = max(height, self._view.fontMetrics().height() + 2 * PAD_Y)
        if len(self._heights) > 20_000:
            self._heights.clear()
        self._heights[id(segment)] = (segment, width, height)
        return QSize(width, height)

    # --- painting --------------------------------------------------------------------------------------
    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        segment = index.data(SegmentRole)
        if not isinstance(segment, Segment):
            return
        rect: QRect = option.rect  # type: ignore[attr-defined]
        palette: QPalette = option.palette  # type: ignore[attr-defined]
        selected = bool(option.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined,operator]
        current = bool(index.data(CurrentRole))
        colour = index.data(SpeakerColorRole)
        painter.save()
        if current:  # the playing segment stays visible even when it is also the selected one
            painter.fillRect(rect, PLAYING_COLOUR)
        elif selected:
            painter.fillRect(rect, palette.highlight().color().lighter(170))
        elif index.row() % 2:
            painter.fillRect(rect, palette.alternateBase())
        if selected:
            painter.setPen(palette.highlight().color())
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        if isinstance(colour, QColor):
            painter.fillRect(QRect(rect.left(), rect.top(), BAR_WIDTH, rect.height()), colour)
        text_colour = palette.text().color()
        if selected or current:
            text_colour = QColor(20, 20, 20)
        muted = QColor(text_colour)
        muted.setAlpha(150)
        font = self._view.font()
        line_top = rect.top() + PAD_Y
        fm = self._view.fontMetrics()
        time_rect = QRect(rect.left() + BAR_WIDTH + PAD_X, line_top, TIME_WIDTH, fm.height())
        painter.setPen(muted)
        painter.setFont(font)
        painter.drawText(
            time_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, stamp(segment.start)
        )
        if segment.speaker:
            prev = index.model().index(index.row() - 1, 0).data(SegmentRole) if index.row() else None
            new_turn = not isinstance(prev, Segment) or prev.speaker != segment.speaker
            bold = QFont(font)
            bold.setBold(new_turn)
            painter.setFont(bold)
            painter.setPen(
                colour if isinstance(colour, QColor) else text_colour
            )  # the highlight is light: keep it
            name = segment.speaker if new_turn else ""  # the colour bar says who goes on speaking
            speaker_rect = QRect(time_rect.right() + 1, line_top, SPEAKER_WIDTH - PAD_X, fm.height())
            elided = painter.fontMetrics().elidedText(name, Qt.TextElideMode.ElideRight, speaker_rect.width())
            painter.drawText(speaker_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, elided)
            painter.setFont(font)
        text = segment.text.strip()
        text_rect = self._text_rect(rect)
        layout = self._layout(text, font, text_rect.width())
        painter.setPen(text_colour)
        layout.draw(painter, QPointF(text_rect.topLeft()), self._selections(segment, index, text))
        painter.restore()

    def _selections(
        self, segment: Segment, index: QModelIndex | QPersistentModelIndex, text: str
    ) -> list[QTextLayout.FormatRange]:
        ranges = []
        match = index.data(MatchRole)
        if isinstance(match, str) and match:
            folded, needle = text.casefold(), match.casefold()
            start = folded.find(needle)
            while start >= 0 and len(folded) == len(text):
                ranges.append(_range(start, len(needle), QColor(255, 200, 0), None))
                start = folded.find(needle, start + len(needle))
        word = index.data(CurrentWordRole)
        if isinstance(word, int) and 0 <= word < len(segment.words):
            lead = len(segment.text) - len(segment.text.lstrip())
            a, b = word_spans(segment)[word]
            if b > a:
                ranges.append(_range(a - lead, b - a, QColor(40, 110, 200), QColor("white")))
        return ranges

    # --- editing ---------------------------------------------------------------------------------------
    def createEditor(
        self, parent: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QWidget:
        editor = SegmentEditor(parent)
        editor.setObjectName("segmentEditor")
        editor.setFrameShape(QPlainTextEdit.Shape.NoFrame)
        editor.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        editor.setTabChangesFocus(True)
        editor.commit.connect(self._on_commit)
        self._editor = weakref.ref(editor)
        self._editor_row = index.row()
        return editor

    def setEditorData(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        if isinstance(editor, QPlainTextEdit) and not editor.toPlainText():
            editor.setPlainText(str(index.data(Qt.ItemDataRole.EditRole) or ""))
            editor.moveCursor(editor.textCursor().MoveOperation.End)

    def setModelData(
        self, editor: QWidget, model: QAbstractItemModel, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        if isinstance(editor, QPlainTextEdit):
            text = editor.toPlainText()
            if text.strip() != str(index.data(Qt.ItemDataRole.EditRole) or ""):
                self.textCommitted.emit(index.row(), text)

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        rect = self._text_rect(option.rect).adjusted(-4, -PAD_Y + 1, 4, PAD_Y - 1)  # type: ignore[attr-defined]
        rect.setHeight(max(rect.height(), self._view.fontMetrics().height() * 2 + 8))
        editor.setGeometry(rect)

    def destroyEditor(self, editor: QWidget, index: QModelIndex | QPersistentModelIndex) -> None:
        if self._editor is not None and self._editor() is editor:
            self._editor = None
            self._editor_row = -1
        super().destroyEditor(editor, index)

    def open_editor(self) -> tuple[int, SegmentEditor] | None:
        """The row being edited and its editor, if one is open (split at the cursor reads it)."""
        editor = self._editor() if self._editor is not None else None
        return (self._editor_row, editor) if editor is not None else None

    def _on_commit(self) -> None:
        editor = self._editor() if self._editor is not None else None
        if editor is not None:
            self.commitData.emit(editor)
            self.closeEditor.emit(editor, QStyledItemDelegate.EndEditHint.NoHint)

    # --- where a click landed --------------------------------------------------------------------------
    def word_at_point(self, index: QModelIndex, rect: QRect, point: QPoint) -> int | None:
        """The word of the row at ``index`` under ``point`` (view coordinates); None off the text."""
        segment = index.data(SegmentRole)
        if not isinstance(segment, Segment) or not segment.words:
            return None
        text_rect = self._text_rect(rect)
        if not text_rect.contains(point):
            return None
        layout = self._layout(segment.text.strip(), self._view.font(), text_rect.width())
        local = QPointF(point - text_rect.topLeft())
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            if line.y() <= local.y() < line.y() + line.height():
                char = line.xToCursor(local.x())
                lead = len(segment.text) - len(segment.text.lstrip())
                for w, (a, b) in enumerate(word_spans(segment)):
                    if a - lead <= char < b - lead + 1:
                        return w
        return None


def _range(start: int, length: int, background: QColor, foreground: QColor | None) -> QTextLayout.FormatRange:
    fmt = QTextCharFormat()
    fmt.setBackground(background)
    if foreground is not None:
        fmt.setForeground(foreground)
    r = QTextLayout.FormatRange()
    r.start, r.length, r.format = start, length, fmt
    return r


class SegmentListView(QListView):
    """A list view set up for long transcripts: batched layout, per-pixel scrolling, rows that re-wrap."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pending: tuple[QPersistentModelIndex, QAbstractItemView.ScrollHint] | None = None
        self._retry = QTimer(self)  # batched layout lays rows out in idle time: scroll once it reached them
        self._retry.setSingleShot(True)
        self._retry.setInterval(RETRY_MS)
        self._retry.timeout.connect(self._scroll_pending)
        self._tries = 0
        self.setObjectName("segmentList")
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(200)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(False)
        self.setWordWrap(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.delegate = SegmentDelegate(self)
        self.setItemDelegate(self.delegate)
        self.clicked_word: int | None = None  # the word under the last click (read by ``clicked``'s slot)

    def scrollTo(
        self,
        index: QModelIndex | QPersistentModelIndex,
        hint: QAbstractItemView.ScrollHint = QAbstractItemView.ScrollHint.EnsureVisible,
    ) -> None:
        """Scroll to ``index``, waiting for the batched layout to reach it (right after opening, a jump to
        the end of a long transcript would otherwise do nothing)."""
        if index.isValid() and not self.visualRect(index).isValid():
            self._pending = (QPersistentModelIndex(index), hint)
            self._tries = 0
            self._retry.start()
            return
        self._pending = None
        self._retry.stop()
        super().scrollTo(index, hint)

    @Slot()
    def _scroll_pending(self) -> None:
        if self._pending is None:
            return
        index, hint = self._pending
        if not index.isValid():
            self._pending = None
            return
        if self.visualRect(QModelIndex(index)).isValid():
            self._pending = None
            super().scrollTo(QModelIndex(index), hint)
            return
        self._tries += 1
        if self._tries < MAX_TRIES:
            self._retry.start()
        else:
            self._pending = None

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position().toPoint()
        index = self.indexAt(pos)
        self.clicked_word = (
            self.delegate.word_at_point(index, self.visualRect(index), pos) if index.isValid() else None
        )
        super().mouseReleaseEvent(event)
