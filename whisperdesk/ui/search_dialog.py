"""Search every kept transcript (Ctrl+K): recording, time, speaker and the text with the matches marked.

The search itself is the library's (through the transcript service): phrase and prefix queries, accents
and case ignored. Results come newest first or best match first, optionally one speaker's; Enter (or a
double-click) on a result opens that transcript at that moment and plays from there (``openRequested``).
"""

from __future__ import annotations

import datetime
import html
import math
from collections.abc import Callable, Sequence

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QKeyEvent, QPainter, QPalette, QStandardItem, QStandardItemModel, QTextDocument
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from whisperdesk.core.library.store import SearchHit
from whisperdesk.ui.transcript_model import stamp

SearchFn = Callable[[str, str | None, str], "Sequence[SearchHit] | str"]
HitRole = Qt.ItemDataRole.UserRole + 1
HtmlRole = Qt.ItemDataRole.UserRole + 2
ORDERS = (("newest", "Newest first"), ("best", "Best match first"))
ALL_SPEAKERS = "All speakers"


def marked_html(hit: SearchHit) -> str:
    """The hit's snippet with the matching words in bold on yellow (everything else escaped)."""
    open_mark, close_mark = "\x01", "\x02"
    text = html.escape(hit.snippet(open_mark, close_mark, width=200))
    return text.replace(open_mark, "<b style='background:#ffe14d'>").replace(close_mark, "</b>")


class _HtmlDelegate(QStyledItemDelegate):
    """Draws the hit's marked snippet, wrapped; each row is as tall as its wrapped text at the column's
    width, so a second line (and the highlight on it) is never cut off."""

    def __init__(self, view: QTreeView) -> None:
        super().__init__(view)
        self._view = view

    @staticmethod
    def _document(
        option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex, width: int
    ) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(option.font)  # type: ignore[attr-defined]
        doc.setHtml(str(index.data(HtmlRole) or ""))
        doc.setTextWidth(max(20, width))
        return doc

    def paint(
        self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> None:
        doc = self._document(option, index, option.rect.width())  # type: ignore[attr-defined]
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:  # type: ignore[attr-defined,operator]
            painter.fillRect(option.rect, option.palette.highlight())  # type: ignore[attr-defined]
        painter.translate(option.rect.topLeft())  # type: ignore[attr-defined]
        painter.setClipRect(0, 0, option.rect.width(), option.rect.height())  # type: ignore[attr-defined]
        doc.drawContents(painter)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        width = self._view.columnWidth(index.column())
        doc = self._document(option, index, width)
        minimum = option.fontMetrics.height() + 8  # type: ignore[attr-defined]
        return QSize(width, max(minimum, math.ceil(doc.size().height())))


class SearchDialog(QDialog):
    """Signals: openRequested(int job_id, float seconds)."""

    openRequested = Signal(int, float)

    def __init__(
        self, search: SearchFn, speakers: Callable[[], list[str]], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Search transcripts")
        self.setObjectName("searchDialog")
        self.resize(980, 520)
        self._search = search
        self._speakers = speakers
        self.query = QLineEdit(self)
        self.query.setObjectName("searchQuery")
        self.query.setPlaceholderText(
            'Words, a "phrase in quotes" or the start of a word followed by * (budg*)'
        )
        self.query.setClearButtonEnabled(True)
        self.speaker_box = QComboBox(self)
        self.speaker_box.setObjectName("searchSpeaker")
        self.order_box = QComboBox(self)
        self.order_box.setObjectName("searchOrder")
        for key, label in ORDERS:
            self.order_box.addItem(label, key)
        self.status = QLabel("", self)
        self.status.setEnabled(False)
        self.results = QTreeView(self)
        self.results.setObjectName("searchResults")
        self.results.setRootIsDecorated(False)
        self.results.setAlternatingRowColors(True)
        self.results.setUniformRowHeights(False)  # a hit that wraps gets the lines it needs
        self.results.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        palette = self.results.palette()  # one selection colour in every column (the text column draws HTML)
        palette.setColor(QPalette.ColorRole.Highlight, palette.highlight().color().lighter(170))
        palette.setColor(QPalette.ColorRole.HighlightedText, palette.text().color())
        self.results.setPalette(palette)
        self.model = QStandardItemModel(0, 5, self)
        self.model.setHorizontalHeaderLabels(["Recording", "Date", "Time", "Speaker", "Text"])
        self.results.setModel(self.model)
        self.results.setItemDelegateForColumn(4, _HtmlDelegate(self.results))
        header = self.results.header()
        header.setStretchLastSection(True)
        for column, width in enumerate((170, 90, 64, 110)):
            header.resizeSection(column, width)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.sectionResized.connect(self._on_section_resized)
        self.results.activated.connect(self._on_activated)
        top = QHBoxLayout()
        top.addWidget(self.query, 1)
        top.addWidget(self.speaker_box)
        top.addWidget(self.order_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.results, 1)
        layout.addWidget(self.status)
        self._timer = QTimer(self)  # search as the person types, once they pause
        self._timer.setSingleShot(True)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.run_search)
        self.query.textChanged.connect(self._timer.start)
        self.query.returnPressed.connect(self._on_return)
        self.speaker_box.currentIndexChanged.connect(self.run_search)
        self.order_box.currentIndexChanged.connect(self.run_search)
        self.refresh_speakers()

    @Slot(int, int, int)
    def _on_section_resized(self, column: int, _old: int, _new: int) -> None:
        if column == 4:  # the text wraps anew: rows take their new heights
            self.results.doItemsLayout()

    def refresh_speakers(self) -> None:
        current = self.speaker_box.currentText()
        blocked = self.speaker_box.blockSignals(True)
        self.speaker_box.clear()
        self.speaker_box.addItem(ALL_SPEAKERS)
        self.speaker_box.addItems(self._speakers())
        index = self.speaker_box.findText(current)
        self.speaker_box.setCurrentIndex(max(0, index))
        self.speaker_box.blockSignals(blocked)

    def focus_query(self) -> None:
        self.query.setFocus()
        self.query.selectAll()

    @Slot()
    def run_search(self) -> None:
        self._timer.stop()
        self.model.removeRows(0, self.model.rowCount())
        text = self.query.text().strip()
        if not text:
            self.status.setText("")
            return
        speaker = self.speaker_box.currentText()
        order = str(self.order_box.currentData())
        hits = self._search(text, None if speaker == ALL_SPEAKERS else speaker, order)
        if isinstance(hits, str):
            self.status.setText(hits[:1].upper() + hits[1:])
            return
        for hit in hits:
            self.model.appendRow(self._row(hit))
        self.status.setText(f"{len(hits)} found" if hits else "Nothing found")
        if hits:
            self.results.setCurrentIndex(self.model.index(0, 0))

    def _row(self, hit: SearchHit) -> list[QStandardItem]:
        when = datetime.datetime.fromtimestamp(hit.created_at).strftime("%Y-%m-%d")
        name = QStandardItem(hit.source.name)
        name.setToolTip(str(hit.source) + ("" if hit.job_id is not None else " (removed from the queue)"))
        name.setData(hit, HitRole)
        text = QStandardItem(hit.text)
        text.setData(marked_html(hit), HtmlRole)
        text.setToolTip(hit.text)
        return [
            name,
            QStandardItem(when),
            QStandardItem(stamp(hit.start)),
            QStandardItem(hit.speaker or ""),
            text,
        ]

    def hit_at(self, row: int) -> SearchHit | None:
        hit = self.model.index(row, 0).data(HitRole)
        return hit if isinstance(hit, SearchHit) else None

    @Slot()
    def _on_return(self) -> None:
        if self._timer.isActive() or self.model.rowCount() == 0:
            self.run_search()
        index = self.results.currentIndex()
        if index.isValid():
            self._on_activated(index)

    @Slot(QModelIndex)
    def _on_activated(self, index: QModelIndex) -> None:
        hit = self.hit_at(index.row())
        if hit is None:
            return
        if hit.job_id is None:
            self.status.setText(
                f"{hit.source.name} was removed from the queue; its transcript is kept for search only."
            )
            return
        self.openRequested.emit(hit.job_id, hit.start)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self.query.hasFocus():
            self.results.setFocus()  # arrows move through the results, Enter opens one
            self.results.keyPressEvent(event)  # type: ignore[arg-type]
            return
        super().keyPressEvent(event)

    def done(self, result: int) -> None:
        self._timer.stop()
        super().done(result)
