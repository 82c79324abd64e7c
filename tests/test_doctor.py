"""`whisperdesk doctor` on this machine (real CTranslate2, real NVML lookup, real loader probes in a child)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import ctranslate2
import pynvml
import pytest
from test_gpu import FakeGpu, FakeNvml, nvidia_driver_present, two_gpu_machine

import whisperdesk
from whisperdesk.commands import doctor as doctor_command
from whisperdesk.core.doctor import (
    CudaRunCheck,
    DoctorReport,
    LibraryProbe,
    check_cuda_run,
    collect_report,
    format_bytes,
    format_report,
    judge,
    list_models,
    probe_libraries,
    run_python_child,
)
from whisperdesk.core.gpu import GpuSampler
from whisperdesk.core.paths import AppPaths

GIB = 1024**3
no_driver = pytest.mark.skipif(nvidia_driver_present(), reason="this machine has an NVIDIA driver")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux loader names")


@pytest.fixture(scope="module")
def machine_report(tmp_path_factory: pytest.TempPathFactory) -> DoctorReport:
    """One real report, shared: collecting it starts child processes."""
    return collect_report(AppPaths.under(tmp_path_factory.mktemp("doctorhome")))


@no_driver
def test_report_on_this_machine_says_no_gpu_and_why(machine_report: DoctorReport) -> None:
    report = machine_report
    assert report.gpu_ready is False
    assert report.gpus == ()
    assert report.cuda_device_count == 0
    assert report.cuda_run is None
    assert report.nvml_error is not None and "NVML" in report.nvml_error
    assert report.verdict.startswith("No usable NVIDIA GPU: ")
    assert report.verdict.endswith("; WhisperDesk will run on the CPU.")
    if sys.platform.startswith("linux"):
        assert "libnvidia-ml.so.1 not found (no NVIDIA driver)" in report.verdict


def test_report_lists_cpu_compute_types_and_versions(machine_report: DoctorReport) -> None:
    assert machine_report.ctranslate2_error is None
    assert {"int8", "float32"} <= set(machine_report.compute_types["cpu"])
    packages = machine_report.packages
    assert set(packages) == {
        "whisperdesk",
        "ctranslate2",
        "faster-whisper",
        "PySide6",
        "av",
        "onnxruntime",
        "nvidia-ml-py",
    }
    assert packages["ctranslate2"] == ctranslate2.__version__
    assert packages["whisperdesk"] is not None and packages["whisperdesk"].startswith(whisperdesk.__version__)
    assert machine_report.python_version == ".".join(map(str, sys.version_info[:3]))


@linux_only
def test_report_probes_cuda_libraries(machine_report: DoctorReport) -> None:
    probes = {p.name: p for p in machine_report.cuda_libraries}
    assert list(probes) == ["libcublas.so.12", "libcublasLt.so.12", "libcudnn.so.9"]
    cublas = probes["libcublas.so.12"]
    assert cublas.needed  # every CUDA 12 CTranslate2 wheel loads cuBLAS
    assert probes["libcublasLt.so.12"].needed
    for probe in probes.values():
        if probe.found:
            assert probe.error is None and probe.hint is None
        else:
            assert probe.error is not None and probe.name in probe.error
    if not cublas.found:
        assert cublas.hint is not None and "LD_LIBRARY_PATH" in cublas.hint


def test_report_folders_and_empty_model_cache(tmp_path: Path) -> None:
    paths = AppPaths.under(tmp_path)
    report = collect_report(paths, sampler=GpuSampler(nvml=FakeNvml([])))
    assert report.models == ()
    assert report.models_dir == str(paths.models_dir)
    assert report.dirs["config"] == str(paths.config_dir)
    assert report.dirs["settings file"] == str(paths.settings_file)
    text = format_report(report)
    assert "no models downloaded yet" in text
    assert f"config: {paths.config_dir} (not created yet)" in text


def test_report_uses_default_paths_from_environment(isolated_home: Path) -> None:
    report = collect_report(sampler=GpuSampler(nvml=FakeNvml([])))
    assert report.models_dir == str(isolated_home / "cache" / "models")


def test_model_cache_lists_plain_and_hub_folders(tmp_path: Path) -> None:
    models = tmp_path / "models"
    plain = models / "my-finetune"
    plain.mkdir(parents=True)
    (plain / "model.bin").write_bytes(b"\0" * 5000)
    (plain / "config.json").write_text("{}")
    (plain / "tokenizer.json").write_text("{}")
    (plain / "vocabulary.json").write_text("[]")
    blobs = models / "models--Systran--faster-whisper-tiny" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / "aaa").write_bytes(b"\0" * 3000)
    snapshot = models / "models--Systran--faster-whisper-tiny" / "snapshots" / "0123abcd"
    snapshot.mkdir(parents=True)
    (snapshot / "model.bin").symlink_to(blobs / "aaa")
    (snapshot / "config.json").write_text("{}")
    (models / "half-downloaded").mkdir()
    (models / "half-downloaded" / "config.json").write_text("{}")

    found = list_models(models)
    assert [(m.name, m.size_bytes) for m in found] == [
        ("Systran/faster-whisper-tiny", 3002),
        ("my-finetune", 5006),
    ]
    assert found[0].missing_files == ("tokenizer.json", "vocabulary.*")
    assert found[1].missing_files == ()
    assert found[0].path == str(snapshot)
    report = collect_report(AppPaths.under(tmp_path / "home"), sampler=GpuSampler(nvml=FakeNvml([])))
    text = format_report(dataclasses.replace(report, models=found))
    assert "Systran/faster-whisper-tiny  2.9 KiB" in text
    assert "incomplete: missing tokenizer.json, vocabulary.*" in text
    assert list_models(tmp_path / "nowhere") == ()


@linux_only
def test_probe_libraries_reports_found_and_missing() -> None:
    results = probe_libraries(["libc.so.6", "libwhisperdesk-not-there.so.7"])
    assert results["libc.so.6"]["found"] is True
    assert results["libc.so.6"]["path"] is not None and "libc" in results["libc.so.6"]["path"]
    missing = results["libwhisperdesk-not-there.so.7"]
    assert missing["found"] is False
    assert "libwhisperdesk-not-there.so.7" in missing["error"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_crashing_probe_is_a_finding_not_a_crash() -> None:
    code = "import resource, os; resource.setrlimit(resource.RLIMIT_CORE, (0, 0)); os.abort()"
    outcome = run_python_child(code)
    assert outcome.data is None
    assert outcome.error == "the probe process crashed with signal SIGABRT"


@no_driver
def test_cuda_run_check_fails_with_ctranslate2s_reason_without_a_driver() -> None:
    check = check_cuda_run()
    assert check.ok is False
    assert check.detail.startswith("RuntimeError: CUDA failed")


def test_a_hanging_probe_times_out() -> None:
    outcome = run_python_child("import time; time.sleep(60)", timeout=0.5)
    assert outcome.error == "the probe process did not finish within 0.5 s"


def test_a_probe_without_result_is_explained() -> None:
    outcome = run_python_child("import sys; sys.stderr.write('boom')")
    assert outcome.error == "the probe process printed no result: boom"
    failed = run_python_child("raise SystemExit('bad thing')")
    assert failed.error == "the probe process exited with code 1: bad thing"


# --- verdicts from findings (a GPU machine simulated by replacing findings in a real report) ---------------
def _with_gpu(report: DoctorReport, **changes: object) -> DoctorReport:
    sample = GpuSampler(nvml=two_gpu_machine()).sample()
    libs = tuple(
        LibraryProbe(name, "x", needed, True, f"/usr/lib/{name}", None, None)
        for name, needed in (("libcublas.so.12", True), ("libcublasLt.so.12", True), ("libcudnn.so.9", False))
    )
    base = dataclasses.replace(
        report,
        cuda_device_count=2,
        cuda_error=None,
        compute_types={**report.compute_types, "cuda:0": ["float16", "int8", "int8_float16"]},
        nvml_driver_version=sample.driver_version,
        gpus=sample.gpus,
        nvml_error=None,
        cuda_libraries=libs,
        cuda_run=CudaRunCheck(True, "ran"),
    )
    return dataclasses.replace(base, **changes)


def test_verdict_gpu_ready(machine_report: DoctorReport) -> None:
    ready, verdict = judge(_with_gpu(machine_report))
    assert ready
    assert verdict == (
        "GPU ready: NVIDIA GeForce RTX 4090 (cuda:0, 24.0 GiB), NVIDIA A10 (cuda:1, 24.0 GiB), "
        "driver 550.54.15; compute types float16, int8, int8_float16."
    )


def test_verdict_missing_cublas_names_library_and_fix(machine_report: DoctorReport) -> None:
    missing = LibraryProbe(
        "libcublas.so.12",
        "cuBLAS",
        True,
        False,
        None,
        "libcublas.so.12: cannot open shared object file",
        "add X",
    )
    report = _with_gpu(machine_report)
    report = dataclasses.replace(report, cuda_libraries=(missing, *report.cuda_libraries[1:]))
    ready, verdict = judge(report)
    assert not ready
    assert verdict == (
        "No usable NVIDIA GPU: libcublas.so.12 cannot be loaded (libcublas.so.12: cannot open shared object "
        "file); add X; WhisperDesk will run on the CPU."
    )


def test_verdict_ignores_missing_library_this_build_does_not_use(machine_report: DoctorReport) -> None:
    report = _with_gpu(machine_report)
    unused = dataclasses.replace(report.cuda_libraries[2], found=False, error="nope")
    ready, _ = judge(dataclasses.replace(report, cuda_libraries=(*report.cuda_libraries[:2], unused)))
    assert ready


def test_verdict_failed_cuda_run(machine_report: DoctorReport) -> None:
    report = _with_gpu(machine_report, cuda_run=CudaRunCheck(False, "RuntimeError: no kernel image"))
    assert judge(report) == (
        False,
        "No usable NVIDIA GPU: CTranslate2 failed on cuda:0 (RuntimeError: no kernel image); "
        "WhisperDesk will run on the CPU.",
    )


def test_verdict_driver_sees_gpu_but_ctranslate2_does_not(machine_report: DoctorReport) -> None:
    report = _with_gpu(
        machine_report,
        cuda_device_count=0,
        cuda_error="CUDA driver version is insufficient for CUDA runtime version",
        cuda_run=None,
    )
    ready, verdict = judge(report)
    assert not ready
    assert "driver 550.54.15 sees NVIDIA GeForce RTX 4090, NVIDIA A10" in verdict
    assert "(CUDA driver version is insufficient for CUDA runtime version)" in verdict
    assert "525" in verdict


def test_verdict_ctranslate2_broken(machine_report: DoctorReport) -> None:
    report = dataclasses.replace(machine_report, ctranslate2_error="ImportError: libgomp.so.1")
    ready, verdict = judge(report)
    assert not ready and "CTranslate2 cannot be loaded (ImportError: libgomp.so.1)" in verdict


def test_format_report_shows_gpus_and_warnings(machine_report: DoctorReport) -> None:
    report = _with_gpu(machine_report)
    report = dataclasses.replace(report, verdict=judge(report)[1])
    text = format_report(report)
    assert (
        "GPU 0  NVIDIA GeForce RTX 4090: 22.0 GiB of 24.0 GiB used, 86 °C, 97% busy, 412 W of 450 W" in text
    )
    assert "GPU 1  NVIDIA A10: 2.0 GiB of 24.0 GiB used, 41 °C, 3% busy" in text
    assert "warning: GPU 0 (NVIDIA GeForce RTX 4090) is at 86 °C" in text
    assert "libcudnn.so.9: found at /usr/lib/libcudnn.so.9 (not used by this CTranslate2 build)" in text
    assert "CUDA run check: passed: ran" in text
    assert text.rstrip().endswith("compute types float16, int8, int8_float16.")


def test_format_bytes() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(24 * GIB) == "24.0 GiB"
    assert format_bytes(3000 * GIB) == "3000.0 GiB"


def test_nvml_init_failure_reaches_the_report(tmp_path: Path) -> None:
    fake = FakeNvml([FakeGpu("g", GIB, [0], 1, 1, 1, 1)], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    report = collect_report(AppPaths.under(tmp_path), sampler=GpuSampler(nvml=fake))
    assert report.nvml_error == "NVML not available: the NVIDIA kernel driver is not loaded; running on CPU"
    if report.cuda_device_count == 0:
        assert report.verdict == (
            "No usable NVIDIA GPU: the NVIDIA kernel driver is not loaded; WhisperDesk will run on the CPU."
        )


# --- the command ---------------------------------------------------------------------------------------------
def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whisperdesk")
    doctor_command.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_command_prints_report(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["doctor"])
    assert args.func is doctor_command.run
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("WhisperDesk doctor\n")
    assert "cpu compute types: " in out
    last = out.rstrip().splitlines()[-1]
    assert last.startswith(("GPU ready: ", "No usable NVIDIA GPU: "))


def test_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["doctor", "--json"])
    assert args.func(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert "int8" in data["compute_types"]["cpu"]
    assert isinstance(data["gpus"], list)
    assert data["verdict"].startswith(("GPU ready: ", "No usable NVIDIA GPU: "))
    assert data["gpu_ready"] is (data["verdict"].startswith("GPU ready"))


def test_module_entry_point_runs_in_a_fresh_process(isolated_home: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "whisperdesk.commands.doctor", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    data = json.loads(out.stdout)
    assert data["models_dir"] == str(isolated_home / "cache" / "models")


@no_driver
def test_without_an_nvidia_gpu_cuda_libraries_are_not_called_missing(machine_report: DoctorReport) -> None:
    text = format_report(machine_report)
    assert "missing (needed)" not in text
    for lib in machine_report.cuda_libraries:
        if not lib.found:
            assert f"{lib.name}: not installed (only needed with an NVIDIA GPU" in text


def test_report_names_the_configured_model_and_whether_it_is_available(tmp_path: Path) -> None:
    from whisperdesk.core.settings import ModelConfig, Settings, save_settings

    paths = AppPaths.under(tmp_path / "home")
    report = collect_report(paths, sampler=GpuSampler(nvml=FakeNvml([])))
    assert report.configured_model == "builtin" and report.model_available
    assert "configured: Built-in (base, multilingual): available" in format_report(report)
    save_settings(paths.settings_file, Settings(model=ModelConfig(model="small")))
    report = collect_report(paths, sampler=GpuSampler(nvml=FakeNvml([])))
    assert report.configured_model == "small" and not report.model_available
    assert "configured: small: NOT available: The model small is not downloaded yet" in format_report(report)
