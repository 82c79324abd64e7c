"""A Hugging Face hub on 127.0.0.1 that serves real model folders, for download tests without internet.

It speaks the part of the hub's HTTP API that huggingface_hub uses to list a model's files
(``/api/models/<repo>[/revision/<rev>]`` with ``blobs=true``) and to fetch them
(``/<repo>/resolve/<rev>/<file>`` with HTTP Range). Faults are switched on per test: a slow line (so a
download can be canceled or its process killed mid-file), a damaged byte in one file, and a connection
that drops after some bytes (the server gone mid-download).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from whisperdesk.core.models.integrity import sha256_of
from whisperdesk.core.models.store import git_blob_sha1

LFS_FILES = ("model.bin",)
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Faults:
    bytes_per_second: int = 0  # 0: as fast as possible
    corrupt: set[str] = field(default_factory=set)  # files served with one byte changed
    drop_after: dict[str, int] = field(default_factory=dict)  # file -> close the connection after N bytes


@dataclass(frozen=True)
class Served:
    file: str
    start: int  # first byte asked for (0 without Range)
    sent: int  # bytes actually written


class LoopbackHub:
    """``with LoopbackHub({"Systran/faster-whisper-tiny.en": folder}) as hub: hub.url``."""

    def __init__(self, repos: dict[str, Path], *, port: int = 0) -> None:
        self.repos = {repo: Path(folder) for repo, folder in repos.items()}
        self.faults = Faults()
        self.served: list[Served] = []
        self.api_calls = 0
        self._meta = {repo: self._describe(folder) for repo, folder in self.repos.items()}
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = False
        self._server.block_on_close = True  # stop() returns only when every handler thread has ended
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def commit(self, repo: str) -> str:
        return str(self._meta[repo]["sha"])

    def start(self) -> LoopbackHub:
        self._thread = threading.Thread(target=self._server.serve_forever, name="loopback-hub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and end every connection (clients keep idle HTTP/1.1 connections open)."""
        self._server.shutdown()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> LoopbackHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def bytes_sent(self, file: str) -> int:
        return sum(s.sent for s in self.served if s.file == file)

    # --- what the hub says about a repo -----------------------------------------------------------------
    @staticmethod
    def _describe(folder: Path) -> dict[str, object]:
        siblings = []
        for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
            size = path.stat().st_size
            entry: dict[str, object] = {"rfilename": path.name, "size": size}
            if path.name in LFS_FILES:
                sha = sha256_of(path)
                entry["blobId"] = hashlib.sha1(sha.encode(), usedforsecurity=False).hexdigest()
                entry["lfs"] = {"sha256": sha, "size": size, "pointerSize": 134}
            else:
                entry["blobId"] = git_blob_sha1(path)
            siblings.append(entry)
        commit = hashlib.sha1(json.dumps(siblings).encode(), usedforsecurity=False).hexdigest()
        return {"sha": commit, "siblings": siblings}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # keep test output clean
                pass

            def setup(self) -> None:
                super().setup()
                with hub._lock:
                    hub._sockets.add(self.connection)

            def finish(self) -> None:
                with hub._lock:
                    hub._sockets.discard(self.connection)
                with contextlib.suppress(OSError):
                    super().finish()

            def do_GET(self) -> None:
                hub._route(self, send_body=True)

            def do_HEAD(self) -> None:
                hub._route(self, send_body=False)

        return Handler

    def _route(self, req: BaseHTTPRequestHandler, *, send_body: bool) -> None:
        path = req.path.split("?", 1)[0]
        for repo, folder in self.repos.items():
            api = f"/api/models/{repo}"
            if path == api or path.startswith(api + "/revision/"):
                self.api_calls += 1
                meta = self._meta[repo]
                body = json.dumps({"id": repo, "modelId": repo, "private": False, **meta}).encode()
                return self._send(req, 200, body, {"Content-Type": "application/json"}, send_body)
            prefix = f"/{repo}/resolve/"
            if path.startswith(prefix):
                _rev, _, name = path[len(prefix) :].partition("/")
                file = folder / name
                if file.is_file():
                    return self._send_file(req, repo, file, send_body)
        body = json.dumps({"error": "Repository not found"}).encode()
        return self._send(
            req, 404, body, {"Content-Type": "application/json", "X-Error-Code": "RepoNotFound"}, send_body
        )

    @staticmethod
    def _send(
        req: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], send_body: bool
    ) -> None:
        req.send_response(status)
        for key, value in headers.items():
            req.send_header(key, value)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        if send_body:
            req.wfile.write(body)

    def _send_file(self, req: BaseHTTPRequestHandler, repo: str, file: Path, send_body: bool) -> None:
        data = file.read_bytes()
        if file.name in self.faults.corrupt:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        match = _RANGE.fullmatch(req.headers.get("Range", "") or "")
        start = int(match.group(1)) if match else 0
        body = data[start:]
        req.send_response(206 if match else 200)
        if match:
            req.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        req.send_header("Content-Length", str(len(body)))
        req.send_header("Accept-Ranges", "bytes")
        req.send_header("X-Repo-Commit", self.commit(repo))
        req.send_header("ETag", f'"{sha256_of(file) if file.name in LFS_FILES else git_blob_sha1(file)}"')
        req.end_headers()
        if send_body:
            self.served.append(Served(file.name, start, self._write(req, file.name, body)))

    def _write(self, req: BaseHTTPRequestHandler, name: str, body: bytes) -> int:
        limit = self.faults.drop_after.get(name)
        chunk = 64 * 1024
        sent = 0
        try:
            for offset in range(0, len(body), chunk):
                piece = body[offset : offset + chunk]
                if limit is not None and sent + len(piece) > limit:
                    req.wfile.write(piece[: max(0, limit - sent)])
                    sent = limit
                    req.close_connection = True
                    req.wfile.flush()
                    req.connection.shutdown(2)  # the server is gone mid-file
                    return sent
                req.wfile.write(piece)
                sent += len(piece)
                if self.faults.bytes_per_second:
                    time.sleep(len(piece) / self.faults.bytes_per_second)
        except OSError:  # the client went away (canceled or killed), or stop() ended the connection
            req.close_connection = True
        return sent
