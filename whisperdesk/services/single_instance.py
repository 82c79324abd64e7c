"""Files handed from a second ``whisperdesk`` to the window already running on the same data folder.

The window that holds the data folder's lock (core/instance.py) listens on a local socket in a folder only
this user can enter (core/handover.py says where, and why); a second start (a file manager's "Open with",
the desktop entry's ``%F``) checks that the socket is this user's, connects, checks that the listening
process is this user's, sends its file list as one JSON line and exits once the window answered ``ok``. The
lock decides who is first, so a socket file left by a crashed window is removed and reused, never trusted.
"""

from __future__ import annotations

import json
import logging
import os
import socket as pysocket
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from whisperdesk.core.handover import (
    SocketNotOurs,
    check_peer,
    check_socket,
    pipe_name,
    prepare_place,
    socket_places,
)

log = logging.getLogger(__name__)

ACK = b"ok\n"
MAX_MESSAGE = 4 * 1024 * 1024  # a long list of paths, not a stream


class InstanceServer(QObject):
    """``filesReceived(list[str])`` (possibly empty: "show the window") for each second start."""

    filesReceived = Signal(list)

    def __init__(self, data_dir: Path, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("InstanceServer")
        self._data_dir = Path(data_dir)
        self._name = ""
        self.problems: list[str] = []  # places refused (not ours), in plain words, for the window's log
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_new_connection)
        self._buffers: dict[QLocalSocket, bytearray] = {}

    @property
    def name(self) -> str:
        """Where it listens (a socket path; a pipe name on Windows); empty before :meth:`listen`."""
        return self._name

    def listen(self) -> bool:
        """Start listening in the first private place that works; call only while holding the data
        folder's window lock. A place whose folder is not ours alone is skipped and reported."""
        if os.name == "nt":  # pragma: no cover - a named pipe, limited to this user by UserAccessOption
            return self._listen_at(pipe_name(self._data_dir))
        for place in socket_places(self._data_dir):
            try:
                prepare_place(place)
            except SocketNotOurs as exc:
                self.problems.append(exc.reason)
                log.warning("%s; not used: %s", exc.reason, exc.path)
                continue
            except OSError as exc:
                log.info("cannot use %s for the hand-over socket: %s", place.directory, exc)
                continue
            if self._listen_at(place.path):
                return True
        log.warning("cannot accept files from other starts: no private place for the socket worked")
        return False

    def _listen_at(self, name: str) -> bool:
        QLocalServer.removeServer(name)  # a socket left by a crashed window: we hold the lock now
        if not self._server.listen(name):
            log.info("cannot listen on %s (%s)", name, self._server.errorString())
            return False
        self._name = name
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


@dataclass(frozen=True)
class HandOver:
    """What a hand-over came to: ``handed`` (the window answered), else ``refused`` says in plain words why
    a socket was not used (not ours: nothing was sent), or neither (no window answered)."""

    handed: bool
    refused: str = ""


def hand_over(data_dir: Path, files: list[str], *, timeout_ms: int = 5000) -> HandOver:
    """Give ``files`` (absolute paths; empty: just show the window) to the window running on ``data_dir``.

    Blocking: for a second start, before it would open a window of its own. Nothing is sent to a socket
    that is not this user's (folder, file and, where the OS tells, the listening process).
    """
    message = json.dumps({"files": files}, ensure_ascii=False).encode("utf-8") + b"\n"
    if os.name == "nt":  # pragma: no cover - the pipe is limited to this user by the server's options
        return HandOver(_send_pipe(pipe_name(data_dir), message, timeout_ms))
    refused = ""
    for place in socket_places(data_dir):
        try:
            if check_socket(place) and _send_unix(place.path, message, timeout_ms / 1000):
                return HandOver(True)
        except SocketNotOurs as exc:  # never used; the window may still listen in a later, private place
            log.warning("not handing files over to %s: %s", exc.path, exc.reason)
            refused = refused or f"{exc.path}: {exc.reason}"
    return HandOver(False, refused)


def _send_unix(path: str, message: bytes, timeout_s: float) -> bool:
    """Connect, check who listens (raises SocketNotOurs before a byte is written), send, wait for ``ok``.

    Python's own socket rather than QLocalSocket: the peer's credentials need the descriptor anyway, and it
    works from any thread (QLocalSocket's blocking reads did not, off the GUI thread)."""
    with pysocket.socket(pysocket.AF_UNIX, pysocket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            sock.connect(path)
        except OSError:
            return False  # nothing listens (a socket file left by a crashed window, or one just closing)
        check_peer(sock.fileno(), path)
        try:
            sock.sendall(message)
            answer = b""
            while ACK not in answer:
                chunk = sock.recv(64)
                if not chunk:
                    return False
                answer += chunk
        except OSError:
            return False
    return True


def _send_pipe(name: str, message: bytes, timeout_ms: int) -> bool:  # pragma: no cover - Windows
    pipe = QLocalSocket()
    pipe.connectToServer(name)
    if not pipe.waitForConnected(timeout_ms):
        return False
    try:
        pipe.write(message)
        if not pipe.waitForBytesWritten(timeout_ms):
            return False
        answer = b""
        while ACK not in answer:
            if not pipe.waitForReadyRead(timeout_ms):
                return False
            answer += bytes(pipe.readAll().data())
        return True
    finally:
        pipe.disconnectFromServer()
