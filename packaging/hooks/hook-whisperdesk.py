"""WhisperDesk itself: the CLI imports its subcommands by name (``importlib.import_module``), which the
analysis cannot see; the icons and the speaker model live in ``whisperdesk/resources``. The test and benchmark
tooling in ``whisperdesk.devtools`` is never imported by the app and stays out."""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules("whisperdesk.commands")
datas = collect_data_files("whisperdesk", subdir="resources")
excludedimports = ["whisperdesk.devtools"]
