"""`whisperdesk doctor`: what this machine can run, and if the GPU is unusable, why.

Most "it runs on the CPU" reports come down to one of four things: no NVIDIA driver, a driver too old for
CUDA 12, cuBLAS not on the loader path, or CTranslate2 failing at first GPU use. This report checks each in
that order and ends with one plain sentence. Loading CUDA libraries can abort a process (faster-whisper
#1017), so those probes run in a child Python process and a crash there is just another finding.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import mmap
import os
import platform
import signal
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisperdesk.core.gpu import GpuSample, GpuSampler
from whisperdesk.core.paths import AppPaths
from whisperdesk.core.units import format_bytes

PROBE_TIMEOUT_S = 60.0

# Distribution names to report; the first one installed wins (PySide6 may come as the Essentials wheel).
PACKAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("whisperdesk", ("whisperdesk",)),
    ("ctranslate2", ("ctranslate2",)),
    ("faster-whisper", ("faster-whisper",)),
    ("PySide6", ("PySide6", "PySide6-Essentials")),
    ("av", ("av",)),
    ("onnxruntime", ("onnxruntime", "onnxruntime-gpu")),
    ("nvidia-ml-py", ("nvidia-ml-py",)),
)


@dataclass(frozen=True)
class LibraryProbe:
    name: str  # what the loader is asked for, e.g. libcublas.so.12
    purpose: str
    needed: bool  # does the installed CTranslate2 build load it (read from its binary; cuBLAS assumed)
    found: bool
    path: str | None  # where it was loaded from, when the OS tells us (Linux)
    error: str | None  # the loader's own message when missing
    hint: str | None  # what to do, for needed libraries that are missing


@dataclass(frozen=True)
class CudaRunCheck:
    ok: bool
    detail: str


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: str
    size_bytes: int
    missing_files: tuple[str, ...]  # files faster-whisper needs next to model.bin


@dataclass(frozen=True)
class DoctorReport:
    python_version: str
    python_executable: str
    os: str
    packages: dict[str, str | None]  # None: not installed
    ctranslate2_error: str | None  # set when ctranslate2 cannot be imported at all
    cuda_device_count: int
    cuda_error: str | None  # CTranslate2's own CUDA error, when it gave one
    compute_types: dict[str, list[str]]  # "cpu", "cuda:0", …
    nvml_driver_version: str | None
    gpus: tuple[GpuSample, ...]
    nvml_error: str | None
    cuda_libraries: tuple[LibraryProbe, ...]
    cuda_run: CudaRunCheck | None  # None when CTranslate2 counts no CUDA device
    models_dir: str
    models: tuple[ModelEntry, ...]
    configured_model: str  # the model transcription uses (saved settings, or the default)
    model_available: bool
    model_status: str  # one line: available where, or why not and what to do
    dirs: dict[str, str]
    gpu_ready: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- child-process probes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChildOutcome:
    data: Any  # the JSON the child printed last, or None
    error: str | None


def run_python_child(code: str, args: Sequence[str] = (), timeout: float = PROBE_TIMEOUT_S) -> ChildOutcome:
    """Run ``code`` in a fresh interpreter; it must print one JSON document as its last stdout line."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ChildOutcome(None, f"the probe process did not finish within {timeout:g} s")
    except OSError as exc:
        return ChildOutcome(None, f"could not start {sys.executable}: {exc}")
    tail = " | ".join(line.strip() for line in proc.stderr.strip().splitlines()[-3:] if line.strip())
    if proc.returncode != 0:
        how = _describe_exit(proc.returncode)
        return ChildOutcome(None, f"the probe process {how}" + (f": {tail}" if tail else ""))
    lines = proc.stdout.strip().splitlines()
    try:
        return ChildOutcome(json.loads(lines[-1]), None)
    except (IndexError, ValueError):
        return ChildOutcome(None, "the probe process printed no result" + (f": {tail}" if tail else ""))


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"crashed with signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"crashed with signal {-returncode}"
    if returncode > 0xFFFF:  # a Windows NTSTATUS such as 0xC0000409
        return f"crashed with exit code {returncode:#010x}"
    return f"exited with code {returncode}"


_LOAD_CODE = r"""
import ctypes, json, os, sys
if sys.platform == "win32":
    try:
        import ctranslate2  # adds its package folder to the DLL search path, as at real use
    except Exception:
        pass
def where(name):
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if os.path.basename(path).startswith(name):
                    return path
    except OSError:
        pass
    return None
out = {}
for name in sys.argv[1:]:
    try:
        ctypes.CDLL(name)
        out[name] = {"found": True, "path": where(name), "error": None}
    except OSError as exc:
        out[name] = {"found": False, "path": None, "error": str(exc)}
print(json.dumps(out))
"""


def probe_libraries(names: Sequence[str], timeout: float = PROBE_TIMEOUT_S) -> dict[str, dict[str, Any]]:
    """Ask the OS loader for each library in a child process: {name: {found, path, error}}."""
    if not names:
        return {}
    outcome = run_python_child(_LOAD_CODE, names, timeout)
    if outcome.error is None:
        return dict(outcome.data)
    if len(names) == 1:
        return {names[0]: {"found": False, "path": None, "error": outcome.error}}
    # One of them took the process down: probe one per process so the others still get an answer.
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        results.update(probe_libraries([name], timeout))
    return results


_CUDA_RUN_CODE = r"""
import ctypes, json, sys
STATUS = {1: "NOT_INITIALIZED", 3: "ALLOC_FAILED", 7: "INVALID_VALUE", 8: "ARCH_MISMATCH",
          13: "EXECUTION_FAILED", 14: "INTERNAL_ERROR", 15: "NOT_SUPPORTED"}
def check():
    import numpy as np
    import ctranslate2 as ct
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    on_gpu = ct.StorageView.from_array(a).to_device(ct.Device.cuda)
    back = np.asarray(on_gpu.to(ct.DataType.float16).to(ct.DataType.float32).to_device(ct.Device.cpu))
    if not np.array_equal(back, a):
        return False, "cuda:0 returned wrong values from a float16 round trip: %s" % back.tolist()
    cublas = ctypes.CDLL(sys.argv[1])
    handle = ctypes.c_void_p()
    status = cublas.cublasCreate_v2(ctypes.byref(handle))
    if status != 0:
        return False, "cuBLAS could not start on cuda:0 (CUBLAS_STATUS_%s)" % STATUS.get(status, status)
    cublas.cublasDestroy_v2(handle)
    return True, "CTranslate2 ran a CUDA kernel on cuda:0 and cuBLAS started"
try:
    ok, detail = check()
except Exception as exc:
    ok, detail = False, "%s: %s" % (type(exc).__name__, exc)
print(json.dumps({"ok": ok, "detail": detail}))
"""


def check_cuda_run(timeout: float = PROBE_TIMEOUT_S) -> CudaRunCheck:
    """Run real CUDA work through CTranslate2 and start cuBLAS, in a child process."""
    outcome = run_python_child(_CUDA_RUN_CODE, [_cublas_name()], timeout)
    if outcome.error is not None:
        return CudaRunCheck(False, outcome.error)
    return CudaRunCheck(bool(outcome.data["ok"]), str(outcome.data["detail"]))


# --- CUDA libraries ---------------------------------------------------------------------------------------
def _cublas_name() -> str:
    return "cublas64_12.dll" if sys.platform == "win32" else "libcublas.so.12"


def _library_specs() -> list[tuple[str, str, str, bool]]:
    """(loader name, purpose, wheel sub-path, needed when CTranslate2's binary cannot be read)."""
    if sys.platform == "win32":
        return [
            ("cublas64_12.dll", "cuBLAS (CUDA 12)", "nvidia/cublas/bin", True),
            ("cublasLt64_12.dll", "cuBLASLt (CUDA 12), loaded by cuBLAS", "nvidia/cublas/bin", True),
            ("cudnn64_9.dll", "cuDNN 9", "nvidia/cudnn/bin", False),
        ]
    if sys.platform == "darwin":
        return []  # no CUDA on macOS; CTranslate2 runs on the CPU there
    return [
        ("libcublas.so.12", "cuBLAS (CUDA 12)", "nvidia/cublas/lib", True),
        ("libcublasLt.so.12", "cuBLASLt (CUDA 12), loaded by cuBLAS", "nvidia/cublas/lib", True),
        ("libcudnn.so.9", "cuDNN 9", "nvidia/cudnn/lib", False),
    ]


def _ctranslate2_binaries() -> list[Path]:
    spec = importlib.util.find_spec("ctranslate2")
    if spec is None or not spec.submodule_search_locations:
        return []
    package = Path(next(iter(spec.submodule_search_locations)))
    found: list[Path] = []
    for folder, pattern in (
        (package, "_ext*"),
        (package, "*.dll"),
        (package.parent / "ctranslate2.libs", "*ctranslate2*"),
        (package / ".dylibs", "*ctranslate2*"),
    ):
        if folder.is_dir():
            found.extend(p for p in folder.glob(pattern) if p.is_file())
    return found


def _referenced(names: Sequence[str]) -> dict[str, bool] | None:
    """Which library names the installed CTranslate2 binaries mention (dlopen targets are plain strings)."""
    binaries = _ctranslate2_binaries()
    if not binaries:
        return None
    seen = dict.fromkeys(names, False)
    for binary in binaries:
        try:
            with binary.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for name in names:
                    seen[name] = seen[name] or data.find(name.encode()) >= 0
        except (OSError, ValueError):
            continue
    return seen


def _wheel_copy(subpath: str, name: str) -> Path | None:
    for entry in sys.path:
        candidate = Path(entry or ".") / subpath / name
        if candidate.is_file():
            return candidate
    return None


def _hint(name: str, subpath: str) -> str:
    var = "PATH" if sys.platform == "win32" else "LD_LIBRARY_PATH"
    copy = _wheel_copy(subpath, name)
    if copy is not None:
        return f"{copy} exists but the loader does not look there: add {copy.parent} to {var}"
    package = "nvidia-cudnn-cu12" if "cudnn" in name else "nvidia-cublas-cu12"
    return f"install the CUDA 12 toolkit, or `pip install {package}` and add its library folder to {var}"


def collect_cuda_libraries(timeout: float = PROBE_TIMEOUT_S) -> tuple[LibraryProbe, ...]:
    specs = _library_specs()
    names = [name for name, *_ in specs]
    referenced = _referenced(names)
    cublas = _cublas_name()
    results = probe_libraries(names, timeout)
    probes = []
    for name, purpose, subpath, fallback_needed in specs:
        if referenced is None:
            needed = fallback_needed
        elif "cublasLt" in name:
            needed = referenced.get(cublas, False) or referenced[name]
        else:
            needed = referenced[name]
        result = results.get(name, {"found": False, "path": None, "error": "not probed"})
        found = bool(result["found"])
        probes.append(
            LibraryProbe(
                name=name,
                purpose=purpose,
                needed=needed,
                found=found,
                path=result.get("path"),
                error=result.get("error"),
                hint=_hint(name, subpath) if needed and not found else None,
            )
        )
    return tuple(probes)


# --- versions, CTranslate2, models --------------------------------------------------------------------------
def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for label, candidates in PACKAGES:
        versions[label] = None
        for dist in candidates:
            try:
                versions[label] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
    if versions["whisperdesk"] is None:  # running from a source tree that was never pip-installed
        import whisperdesk

        versions["whisperdesk"] = f"{whisperdesk.__version__} (source tree)"
    return versions


def _ctranslate2_view() -> tuple[str | None, int, str | None, dict[str, list[str]]]:
    """(import error, CUDA device count, CUDA error, compute types per device)."""
    try:
        import ctranslate2
    except Exception as exc:  # ImportError, or an OSError from a broken native library
        return f"{type(exc).__name__}: {exc}", 0, None, {}
    compute_types: dict[str, list[str]] = {}
    cuda_error: str | None = None
    try:
        compute_types["cpu"] = sorted(ctranslate2.get_supported_compute_types("cpu"))
    except Exception as exc:
        return f"CTranslate2 cannot use the CPU: {exc}", 0, None, {}
    try:
        count = int(ctranslate2.get_cuda_device_count())
    except Exception as exc:
        count, cuda_error = 0, str(exc)
    for index in range(count):
        try:
            compute_types[f"cuda:{index}"] = sorted(ctranslate2.get_supported_compute_types("cuda", index))
        except Exception as exc:
            cuda_error = f"cuda:{index}: {exc}"
    return None, count, cuda_error, compute_types


def _cuda_error_when_uncounted() -> str | None:
    """CTranslate2 counts 0 devices silently; asking for CUDA compute types surfaces its reason."""
    try:
        import ctranslate2

        ctranslate2.get_supported_compute_types("cuda")
    except Exception as exc:
        return str(exc)
    return None


def _hf_repo_name(relative: Path) -> str:
    for part in relative.parts:
        if part.startswith("models--"):
            return part[len("models--") :].replace("--", "/")
    return relative.as_posix()


def list_models(models_dir: Path) -> tuple[ModelEntry, ...]:
    """Every folder under ``models_dir`` holding a CTranslate2 model.bin (plain folders or HF-hub cache)."""
    if not models_dir.is_dir():
        return ()
    entries = []
    for folder, _dirs, files in os.walk(models_dir):
        if "model.bin" not in files:
            continue
        here = Path(folder)
        size = 0
        for sub, _subdirs, subfiles in os.walk(here):
            for name in subfiles:
                try:
                    size += (Path(sub) / name).stat().st_size  # follows HF-hub symlinks to blobs
                except OSError:
                    continue
        missing = [name for name in ("config.json", "tokenizer.json") if name not in files]
        if not any(name.startswith("vocabulary.") for name in files):
            missing.append("vocabulary.*")
        relative = here.relative_to(models_dir)
        entries.append(ModelEntry(_hf_repo_name(relative), str(here), size, tuple(missing)))
    return tuple(sorted(entries, key=lambda e: (e.name, e.path)))


# --- verdict -------------------------------------------------------------------------------------------------
_NO_GPU = "No usable NVIDIA GPU: {}; WhisperDesk will run on the CPU."


def _nvml_reason(error: str) -> str:
    reason = error.removeprefix("NVML not available: ")
    return reason.removesuffix("; running on CPU")


def judge(report: DoctorReport) -> tuple[bool, str]:
    """(gpu_ready, verdict sentence) from the findings; ignores the report's own verdict fields."""
    if report.ctranslate2_error is not None:
        return False, (
            f"CTranslate2 cannot be loaded ({report.ctranslate2_error}); WhisperDesk cannot transcribe until "
            "it is reinstalled (pip install --force-reinstall ctranslate2)."
        )
    if report.cuda_device_count == 0:
        if report.gpus:
            names = ", ".join(g.name for g in report.gpus)
            why = f" ({report.cuda_error})" if report.cuda_error else ""
            driver = f" {report.nvml_driver_version}" if report.nvml_driver_version else ""
            return False, _NO_GPU.format(
                f"the NVIDIA driver{driver} sees {names} but CTranslate2 finds no CUDA device{why}; "
                "CUDA 12 needs driver 525 or newer"
            )
        if report.nvml_error:
            return False, _NO_GPU.format(_nvml_reason(report.nvml_error))
        return False, _NO_GPU.format("CTranslate2 finds no CUDA device")
    for lib in report.cuda_libraries:
        if lib.needed and not lib.found:
            return False, _NO_GPU.format(f"{lib.name} cannot be loaded ({lib.error}); {lib.hint}")
    if report.cuda_run is not None and not report.cuda_run.ok:
        return False, _NO_GPU.format(f"CTranslate2 failed on cuda:0 ({report.cuda_run.detail})")
    if report.gpus:
        devices = ", ".join(f"{g.name} (cuda:{g.index}, {format_bytes(g.memory_total)})" for g in report.gpus)
    else:
        devices = f"{report.cuda_device_count} CUDA device(s)"
    driver = f", driver {report.nvml_driver_version}" if report.nvml_driver_version else ""
    types = ", ".join(report.compute_types.get("cuda:0", []))
    return True, f"GPU ready: {devices}{driver}; compute types {types}."


# --- collect and format -----------------------------------------------------------------------------------
def collect_report(
    paths: AppPaths | None = None,
    *,
    sampler: GpuSampler | None = None,
    timeout: float = PROBE_TIMEOUT_S,
) -> DoctorReport:
    paths = paths if paths is not None else AppPaths.default()
    ct2_error, count, cuda_error, compute_types = _ctranslate2_view()
    own_sampler = sampler is None
    sampler = sampler if sampler is not None else GpuSampler()
    try:
        nvml = sampler.sample()
    finally:
        if own_sampler:
            sampler.close()
    if ct2_error is None and count == 0 and nvml.gpus and cuda_error is None:
        cuda_error = _cuda_error_when_uncounted()
    report = DoctorReport(
        python_version=platform.python_version(),
        python_executable=sys.executable,
        os=platform.platform(),
        packages=package_versions(),
        ctranslate2_error=ct2_error,
        cuda_device_count=count,
        cuda_error=cuda_error,
        compute_types=compute_types,
        nvml_driver_version=nvml.driver_version,
        gpus=nvml.gpus,
        nvml_error=nvml.nvml_error,
        cuda_libraries=collect_cuda_libraries(timeout),
        cuda_run=check_cuda_run(timeout) if count > 0 and ct2_error is None else None,
        models_dir=str(paths.models_dir),
        models=list_models(paths.models_dir),
        **_configured_model(paths),
        dirs={
            "config": str(paths.config_dir),
            "data": str(paths.data_dir),
            "cache": str(paths.cache_dir),
            "logs": str(paths.log_dir),
            "settings file": str(paths.settings_file),
        },
        gpu_ready=False,
        verdict="",
    )
    ready, verdict = judge(report)
    return dataclasses.replace(report, gpu_ready=ready, verdict=verdict)


def _configured_model(paths: AppPaths) -> dict[str, Any]:
    from whisperdesk.core.models.resolve import availability
    from whisperdesk.core.settings import load_settings

    model = load_settings(paths.settings_file)[0].model.model
    ok, status = availability(model, paths.models_dir)
    return {"configured_model": model, "model_available": ok, "model_status": status}


def _no_nvidia_gpu(report: DoctorReport) -> bool:
    """Nothing to run CUDA on: its libraries are then optional, not "missing (needed)"."""
    return report.cuda_device_count == 0 and not report.gpus


def _gpu_line(gpu: GpuSample) -> str:
    parts = [f"{format_bytes(gpu.memory_used)} of {format_bytes(gpu.memory_total)} used"]
    if gpu.temperature_c is not None:
        parts.append(f"{gpu.temperature_c} °C")
    if gpu.utilization_pct is not None:
        parts.append(f"{gpu.utilization_pct}% busy")
    if gpu.power_w is not None:
        limit = f" of {gpu.power_limit_w:.0f} W" if gpu.power_limit_w is not None else ""
        parts.append(f"{gpu.power_w:.0f} W{limit}")
    return f"  GPU {gpu.index}  {gpu.name}: " + ", ".join(parts)


def format_report(report: DoctorReport) -> str:
    lines = ["WhisperDesk doctor", ""]
    lines += [
        "System",
        f"  Python {report.python_version} ({report.python_executable})",
        f"  {report.os}",
        "",
    ]
    lines.append("Packages")
    width = max(len(name) for name in report.packages)
    lines += [f"  {n:<{width}}  {v or 'not installed'}" for n, v in report.packages.items()]
    lines += ["", "CTranslate2"]
    if report.ctranslate2_error:
        lines.append(f"  cannot be loaded: {report.ctranslate2_error}")
    else:
        lines.append(f"  CUDA devices: {report.cuda_device_count}")
        for device, types in report.compute_types.items():
            lines.append(f"  {device} compute types: {', '.join(types)}")
        if report.cuda_error:
            lines.append(f"  CUDA error: {report.cuda_error}")
    lines += ["", "NVIDIA driver (NVML)"]
    if report.nvml_driver_version:
        lines.append(f"  driver {report.nvml_driver_version}")
    lines += [_gpu_line(gpu) for gpu in report.gpus]
    lines += [f"  warning: {w}" for gpu in report.gpus for w in gpu.warnings]
    if report.nvml_error:
        lines.append(f"  {report.nvml_error}")
    lines += ["", "CUDA libraries"]
    if not report.cuda_libraries:
        lines.append("  none on this platform (no CUDA)")
    no_gpu = _no_nvidia_gpu(report)
    for lib in report.cuda_libraries:
        role = "needed" if lib.needed else "not used by this CTranslate2 build"
        if no_gpu and not lib.found:
            lines.append(
                f"  {lib.name}: not installed (only needed with an NVIDIA GPU; this computer has none)"
            )
        elif lib.found:
            lines.append(f"  {lib.name}: found" + (f" at {lib.path}" if lib.path else "") + f" ({role})")
        else:
            lines.append(f"  {lib.name}: missing ({role}): {lib.error}")
            if lib.hint:
                lines.append(f"    fix: {lib.hint}")
    if report.cuda_run is None:
        lines.append("  CUDA run check: skipped (CTranslate2 finds no CUDA device)")
    else:
        lines.append(
            f"  CUDA run check: {'passed' if report.cuda_run.ok else 'FAILED'}: {report.cuda_run.detail}"
        )
    lines += ["", "Model", f"  configured: {report.model_status}"]
    lines += ["", f"Model cache: {report.models_dir}"]
    if not report.models:
        lines.append("  no models downloaded yet")
    for model in report.models:
        lines.append(f"  {model.name}  {format_bytes(model.size_bytes)}  ({model.path})")
        if model.missing_files:
            lines.append(
                f"    incomplete: missing {', '.join(model.missing_files)}; delete the folder to re-download"
            )
    lines += ["", "Folders"]
    lines += [
        f"  {name}: {path}" + ("" if Path(path).exists() else " (not created yet)")
        for name, path in report.dirs.items()
    ]
    lines += ["", report.verdict]
    return "\n".join(lines) + "\n"
