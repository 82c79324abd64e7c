"""Where the running window's hand-over socket lives, and whether a socket found there is really ours.

Why: a second ``whisperdesk FILE`` sends the file's path to the window through a local socket. Its name used
to be ``/tmp/whisperdesk-<hash of the data folder>``: anyone could compute it, and another local user who
bound it first received every hand-over while the second start said "handed to the running window" (issue
18.2). So, as Qt's ``QLocalServer`` documentation advises, the socket now lives in a directory only this user
can enter, and a client checks, before it sends a single byte, that:

* the directory is a real directory (not a link) owned by this user with no access for group or others,
* the socket file in it is a socket owned by this user, and
* where the OS tells (``SO_PEERCRED`` on Linux), the process listening on it runs as this user.

Where the directory is, in order (the first one that is usable and whose full path fits ``sun_path``):

1. ``$XDG_RUNTIME_DIR/whisperdesk/`` — the per-user runtime folder, only when it is owned by us with mode
   0700 (the XDG spec's promise, checked rather than trusted); ``/run/user/<uid>`` when the variable is unset
   (a start from ssh or cron still finds the desktop session's window).
2. ``<data folder>/run/`` — a 0700 folder of our own (portable setups, systems without a runtime folder).
3. ``/tmp/whisperdesk-<uid>/`` — a 0700 folder (tmux does the same) when neither place above works: too
   long for a socket address, or a file system without sockets (a portable data folder on FAT). A folder of
   that name made by someone else is refused, never used.

The window listens in the first place it can make private; a second start tries them in the same order and
passes over, with a warning, any place that is not this user's alone.

On Windows, ``QLocalServer`` uses a named pipe that ``UserAccessOption`` already limits to this user: the
pipe keeps its short name there.

Pure Python (no Qt): ``services/single_instance.py`` does the listening and connecting.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

RUNTIME_SUBDIR = "whisperdesk"
DATA_SUBDIR = "run"
DATA_SOCKET = "window.sock"
# sun_path holds 108 bytes on Linux and 104 on macOS and the BSDs, the terminating NUL included: the smaller
# limit, less the NUL, holds everywhere.
MAX_SOCKET_PATH = 103


class SocketNotOurs(Exception):
    """A socket (or its folder) that is not this user's: reported in plain words, never connected to."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class SocketPlace:
    """One place the window may listen: its private ``directory`` and the socket's full ``path`` in it."""

    directory: Path
    path: str
    kind: str  # "runtime", "data" or "tmp": for messages and tests


def _digest(data_dir: Path) -> str:
    key = os.path.normcase(os.path.realpath(data_dir))
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def pipe_name(data_dir: Path) -> str:
    """The Windows pipe name (and the name inside shared folders): per data folder, short."""
    return f"whisperdesk-{_digest(data_dir)}"


def _runtime_dir() -> Path | None:
    """``$XDG_RUNTIME_DIR``, or the systemd default when the variable is unset; None when neither is ours."""
    raw = os.environ.get("XDG_RUNTIME_DIR")
    candidate = Path(raw) if raw else Path(f"/run/user/{os.geteuid()}")
    if not candidate.is_absolute():
        return None
    return candidate if private_dir_problem(candidate) is None else None


def socket_places(data_dir: Path) -> list[SocketPlace]:
    """Every place, in order of preference, whose socket path fits the address limit (POSIX only)."""
    places: list[SocketPlace] = []
    name = f"{pipe_name(data_dir)}.sock"
    runtime = _runtime_dir()
    if runtime is not None:
        places.append(SocketPlace(runtime / RUNTIME_SUBDIR, str(runtime / RUNTIME_SUBDIR / name), "runtime"))
    private = Path(os.path.abspath(data_dir)) / DATA_SUBDIR
    places.append(SocketPlace(private, str(private / DATA_SOCKET), "data"))
    shared = Path(tempfile.gettempdir()) / f"whisperdesk-{os.geteuid()}"
    places.append(SocketPlace(shared, str(shared / name), "tmp"))
    return [p for p in places if len(os.fsencode(p.path)) <= MAX_SOCKET_PATH]


def private_dir_problem(directory: Path) -> str | None:
    """Why ``directory`` cannot hold our socket (plain words), or None when it is ours alone.

    ``lstat``: a symbolic link is refused even when it points at a folder of ours, since whoever owns the
    link's folder could point it elsewhere later.
    """
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        return "is not a folder (a link or a file stands in its place)"
    if st.st_uid != os.geteuid():
        return f"belongs to another user (uid {st.st_uid}), not to you (uid {os.geteuid()})"
    if stat.S_IMODE(st.st_mode) & 0o077:
        return f"can be entered by other users (mode {stat.S_IMODE(st.st_mode):04o}; it must be 0700)"
    return None


def prepare_place(place: SocketPlace) -> None:
    """Create ``place.directory`` with mode 0700 (the server side); raises SocketNotOurs when a folder of
    that name exists and is not ours alone. A folder of ours with a loose mode is tightened."""
    directory = place.directory
    with contextlib.suppress(FileExistsError):
        directory.mkdir(mode=0o700, parents=place.kind == "data")
    problem = private_dir_problem(directory)
    if problem is not None and problem.startswith("can be entered"):
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)  # ours, made under a loose umask or by an older version
        problem = private_dir_problem(directory)
    if problem is not None:
        raise SocketNotOurs(directory, f"the folder for WhisperDesk's hand-over socket {problem}")


def check_socket(place: SocketPlace) -> bool:
    """The client's check before connecting: False when nothing listens there (no socket file); raises
    SocketNotOurs when the folder or the socket file is not this user's alone."""
    problem = private_dir_problem(place.directory)
    if problem == "does not exist":
        return False
    if problem is not None:
        raise SocketNotOurs(place.directory, f"the folder of WhisperDesk's hand-over socket {problem}")
    try:
        st = os.lstat(place.path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise SocketNotOurs(place.path, f"cannot be checked ({exc.strerror or exc})") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketNotOurs(place.path, "is not a socket")
    if st.st_uid != os.geteuid():
        raise SocketNotOurs(place.path, f"the socket belongs to another user (uid {st.st_uid})")
    return True


def peer_uid(fd: int) -> int | None:
    """The user id of the process at the other end of the connected Unix socket ``fd``; None where the OS
    does not say (no ``SO_PEERCRED``: macOS, the BSDs — the folder and file checks still hold there)."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=os.dup(fd))
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    except OSError:
        return None
    finally:
        sock.close()
    _pid, uid, _gid = struct.unpack("3i", raw)
    return uid


def check_peer(fd: int, path: str) -> None:
    """Raise SocketNotOurs when the process listening at ``path`` runs as another user."""
    uid = peer_uid(fd)
    if uid is not None and uid != os.geteuid():
        raise SocketNotOurs(path, f"the program listening on it runs as another user (uid {uid})")
