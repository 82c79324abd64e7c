"""Files handed from a second ``whisperdesk`` to the window already running on the same data folder.

The window that holds the data folder's lock (core/instance.py) listens on a local socket named after the
folder; a second start (a file manager's "Open with", the desktop entry's ``%F``) connects, sends its file
list as one JSON line and exits once the window answered ``ok``. The lock decides who is first, so a socket
file left by a crashed window is removed and reused, never trusted.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from whisperdesk.core.instance import server_name

log = logging.getLogger(__name__)

ACK = b"ok\n"
MAX_MESSAGE = 4 * 1024 * 1024  # a long list of paths, not a stream


class InstanceServer(QObject):
    """``filesReceived(list[str])`` (possibly empty: "show the window") for each second start."""

    filesReceived = Signal(list)

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("InstanceServer")
        self._name = server_name(data_dir)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_new_connection)
        self._buffers: dict[QLocalSocket, bytearray] = {}

    @property
    def name(self) -> str:
        return self._name

    def listen(self) -> bool:
        """Start listening; call only while holding the data folder's window lock."""
        QLocalServer.removeServer(self._name)  # a socket left by a crashed window: we hold the lock now
        if not self._server.listen(self._name):
            log.warning("cannot accept files from other starts (%s)", self._server.errorString())
            return False
        return True

    def close(self) -> None:
        self._server.close()
        for socket in list(self._buffers):
            socket.abort()
        self._buffers.clear()

    @Slot()
    def _on_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = bytearray()
            socket.readyRead.connect(self._on_ready_read)
            socket.disconnected.connect(self._on_disconnected)

    @Slot()
    def _on_ready_read(self) -> None:
        socket = self.sender()
        if not isinstance(socket, QLocalSocket) or socket not in self._buffers:
            return
        buffer = self._buffers[socket]
        buffer += bytes(socket.readAll().data())
        if len(buffer) > MAX_MESSAGE:
            log.warning("ignored an oversized message from another start")
            socket.abort()
            return
        if b"\n" not in buffer:
            return
        line = bytes(buffer[: buffer.index(b"\n")])
        files = _parse(line)
        socket.write(ACK)
        socket.flush()
        if files is not None:
            log.info("another start handed over %d file(s)", len(files))
            self.filesReceived.emit(files)

    @Slot()
    def _on_disconnected(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._buffers.pop(socket, None)
            socket.deleteLater()


def _parse(line: bytes) -> list[str] | None:
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        log.warning("ignored a malformed message from another start")
        return None
    files = message.get("files") if isinstance(message, dict) else None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        log.warning("ignored a malformed message from another start")
        return None
    return files


def hand_over(data_dir: Path, files: list[str], *, timeout_ms: int = 5000) -> bool:
    """Give ``files`` (absolute paths; empty: just show the window) to the window running on ``data_dir``;
    True once it answered. Blocking: for a second start, before it would open a window of its own."""
    socket = QLocalSocket()
    socket.connectToServer(server_name(data_dir))
    if not socket.waitForConnected(timeout_ms):
        return False
    try:
        socket.write(json.dumps({"files": files}, ensure_ascii=False).encode("utf-8") + b"\n")
        if not socket.waitForBytesWritten(timeout_ms):
            return False
        answer = b""
        while ACK not in answer:
            if not socket.waitForReadyRead(timeout_ms):
                return False
            answer += bytes(socket.readAll().data())
        return True
    finally:
        socket.disconnectFromServer()
