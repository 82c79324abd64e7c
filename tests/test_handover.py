"""The hand-over socket (issue 18.2): it lives in a folder only this user can enter, and a second start sends
nothing to a socket that is not this user's — folder, socket file or listening process — and says so.

"Another user" is made real where the tests run as root (a folder chowned to a free uid, a listener that
drops to that uid before it listens); as an ordinary user, a folder others can enter stands in for it.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from whisperdesk.core.handover import MAX_SOCKET_PATH, SocketPlace, private_dir_problem, socket_places
from whisperdesk.core.instance import window_lock
from whisperdesk.core.jobstore import JobStore
from whisperdesk.core.paths import AppPaths
from whisperdesk.devtools.synth_audio import noise, write_audio
from whisperdesk.services.single_instance import HandOver, InstanceServer, hand_over

STRANGER = 4242  # a uid no test user has
AS_ROOT = os.geteuid() == 0
WAIT = 120.0  # starting Python and Qt on a slow machine; never asserted as a timing


@pytest.fixture
def paths(isolated_home: Path) -> AppPaths:
    return AppPaths.default().ensure()


def _make_strangers(directory: Path) -> None:
    """``directory`` as another user's: owned by STRANGER (as root), else open to every user."""
    directory.mkdir(parents=True, exist_ok=True)
    if AS_ROOT:
        os.chown(directory, STRANGER, STRANGER)
        os.chmod(directory, 0o755)
    else:
        os.chmod(directory, 0o777)


@pytest.fixture
def squatter(paths: AppPaths) -> Iterator[tuple[socket.socket, SocketPlace]]:
    """A stranger listening where the window would listen first, in a folder that is not ours alone."""
    place = socket_places(paths.data_dir)[0]
    _make_strangers(place.directory)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(place.path)
    os.chmod(place.path, 0o777)
    listener.listen(4)
    listener.settimeout(0.5)
    yield listener, place
    listener.close()


def _received(listener: socket.socket) -> bytes:
    """Everything a client sent to ``listener`` (b"" when no one connected or nothing was written)."""
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return b""
    with conn:
        conn.settimeout(0.5)
        try:
            return conn.recv(65536)
        except TimeoutError:
            return b""


def test_the_window_listens_in_a_folder_only_this_user_can_enter(qapp: object, paths: AppPaths) -> None:
    server = InstanceServer(paths.data_dir)
    try:
        assert server.listen()
        folder = Path(server.name).parent
        assert private_dir_problem(folder) is None, (server.name, oct(folder.stat().st_mode))
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and folder.stat().st_uid == os.geteuid()
        assert stat.S_ISSOCK(os.lstat(server.name).st_mode)
        assert len(os.fsencode(server.name)) <= MAX_SOCKET_PATH
    finally:
        server.close()


def test_without_a_runtime_folder_the_socket_goes_to_a_private_folder_in_the_data_folder(
    qtbot: QtBot, paths: AppPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    loose = tmp_path / "loose-runtime"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)  # not 0700: the XDG spec's promise broken, so not trusted
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(loose))
    server = InstanceServer(paths.data_dir)
    try:
        assert server.listen()
        assert Path(server.name).parent == paths.data_dir / "run"
        assert stat.S_IMODE((paths.data_dir / "run").stat().st_mode) == 0o700
        results: list[
            HandOver
        ] = []  # a second start finds it there (its own thread: the server answers here)
        client = threading.Thread(target=lambda: results.append(hand_over(paths.data_dir, ["/x.wav"])))
        with qtbot.waitSignal(server.filesReceived, timeout=int(WAIT * 1000)) as received:
            client.start()
        qtbot.waitUntil(lambda: bool(results), timeout=int(WAIT * 1000))  # the answer needs this event loop
        client.join(WAIT)
        assert received.args == [["/x.wav"]] and results == [HandOver(True)]
    finally:
        server.close()


def test_a_data_folder_too_deep_for_a_socket_address_falls_back_to_a_private_tmp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "missing"))
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    kinds = [p.kind for p in socket_places(deep)]
    assert kinds == ["tmp"]
    assert all(len(os.fsencode(p.path)) <= MAX_SOCKET_PATH for p in socket_places(deep))


def test_a_squatted_socket_gets_nothing_and_the_start_says_why(
    qapp: object, paths: AppPaths, squatter: tuple[socket.socket, SocketPlace]
) -> None:
    listener, place = squatter
    result = hand_over(paths.data_dir, ["/home/me/secret-meeting.wav"], timeout_ms=500)
    assert not result.handed
    assert "another user" in result.refused or "can be entered by other users" in result.refused
    assert str(place.directory) in result.refused
    assert _received(listener) == b""


def test_the_window_does_not_listen_in_a_strangers_folder_and_is_still_found(
    qtbot: QtBot, paths: AppPaths, squatter: tuple[socket.socket, SocketPlace]
) -> None:
    listener, place = squatter
    server = InstanceServer(paths.data_dir)
    try:
        assert server.listen()
        assert Path(server.name).parent != place.directory  # the next private place instead
        assert server.problems and str(place.directory) not in server.name
        assert private_dir_problem(Path(server.name).parent) is None
        results: list[HandOver] = []
        client = threading.Thread(target=lambda: results.append(hand_over(paths.data_dir, ["/y.wav"])))
        with qtbot.waitSignal(server.filesReceived, timeout=int(WAIT * 1000)) as received:
            client.start()
        qtbot.waitUntil(lambda: bool(results), timeout=int(WAIT * 1000))
        client.join(WAIT)
        assert received.args == [["/y.wav"]] and results[0].handed
        assert _received(listener) == b""  # the squatter, passed over, heard nothing
    finally:
        server.close()


@pytest.mark.skipif(not AS_ROOT or not hasattr(socket, "SO_PEERCRED"), reason="needs root and SO_PEERCRED")
def test_a_listener_running_as_another_user_gets_nothing(qapp: object, paths: AppPaths) -> None:
    """Folder and socket file are ours; only the listening process is not (it dropped to another uid before
    it listened): the peer check alone catches it."""
    place = socket_places(paths.data_dir)[0]
    place.directory.mkdir(mode=0o700)
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, socket, sys
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind({place.path!r})
                os.setgid({STRANGER}); os.setuid({STRANGER})
                s.listen(1)
                print("ready", flush=True)
                s.settimeout(30)
                try:
                    conn, _ = s.accept()
                except TimeoutError:
                    print("nobody"); sys.exit(0)
                conn.settimeout(5)
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    data = b""
                print("got", len(data), flush=True)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        result = hand_over(paths.data_dir, ["/home/me/secret-meeting.wav"], timeout_ms=2000)
        out, _ = child.communicate(timeout=WAIT)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert not result.handed and f"uid {STRANGER}" in result.refused
    assert out.strip() == "got 0"  # it connected, saw who listens, and sent not one byte


def test_a_start_facing_a_squatted_socket_queues_its_file_itself(
    paths: AppPaths, tmp_path: Path, squatter: tuple[socket.socket, SocketPlace]
) -> None:
    """The window holds the lock but its socket name is taken: the start reports it in plain words, sends
    nothing, and the file still reaches the queue (the window's feed picks it up), never dropped."""
    listener, _place = squatter
    recording = write_audio(tmp_path / "in" / "memo.wav", noise(1.0, amplitude=0.2, seed=3))
    lock = window_lock(paths.data_dir)
    assert lock.acquire()  # what the running window holds
    try:
        started = subprocess.run(
            [sys.executable, "-m", "whisperdesk", str(recording)],
            capture_output=True,
            text=True,
            timeout=WAIT,
            env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
        )
    finally:
        lock.release()
    assert started.returncode == 0, started.stderr
    assert "Nothing was sent" in started.stderr and "handed to the running window" not in started.stderr
    assert "added to its queue" in started.stderr
    assert _received(listener) == b""
    with JobStore(paths.jobs_db) as store:
        assert [j.source for j in store.find(recording)] == [recording]
