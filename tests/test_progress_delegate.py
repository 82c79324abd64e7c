"""The queue's progress column is drawn as a horizontal bar: a half-done job is filled on its left half.

Qt 6 takes a progress bar's orientation from ``State_Horizontal``; without it Fusion filled the cell from the
bottom up, so a bar at 55 % looked like a struck-through label (seen in the README screenshot).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QTableView
from pytestqt.qtbot import QtBot

from whisperdesk.ui.queue_model import ProgressRole
from whisperdesk.ui.queue_view import ProgressDelegate

FILL = QColor(200, 0, 0)  # the bar's chunk colour (Highlight), unlike anything else in the cell


def _is_fill(color: QColor) -> bool:
    return color.red() > 150 and color.green() < 80 and color.blue() < 80


def test_half_done_bar_fills_its_left_half(qtbot: QtBot) -> None:
    model = QStandardItemModel(1, 1)
    item = QStandardItem("50 %")
    item.setData(0.5, ProgressRole)
    model.setItem(0, 0, item)
    view = QTableView()
    qtbot.addWidget(view)
    palette = view.palette()
    palette.setColor(QPalette.ColorRole.Highlight, FILL)
    view.setPalette(palette)
    view.setModel(model)
    view.setItemDelegateForColumn(0, ProgressDelegate(view))
    view.setColumnWidth(0, 200)
    view.setRowHeight(0, 30)
    view.resize(260, 80)
    image = view.viewport().grab().toImage()
    cell = view.visualRect(model.index(0, 0))
    y = cell.top() + 8  # upper part of the bar: a bottom-up fill leaves it empty
    left = [image.pixelColor(x, y) for x in range(cell.left() + 10, cell.left() + 80)]
    right = [image.pixelColor(x, y) for x in range(cell.left() + 120, cell.right() - 10)]
    assert sum(map(_is_fill, left)) > len(left) // 2, "the left half of a 50 % bar is not filled"
    assert not any(map(_is_fill, right)), "the right half of a 50 % bar is filled"
