"""Name the Debian packages a frozen WhisperDesk folder needs from the system, from what it really links to.

PyInstaller copies every library it finds a Python module linking to, except the ones every Linux system
provides (glibc, libGL/EGL, X11/xcb, …: PyInstaller's exclude list) which would break if copied. Those are
what the package has to depend on. This runs ``ldd`` over every ELF file of the bundle, the way the bootloader
loads them (``LD_LIBRARY_PATH`` set to the bundle's ``_internal``), keeps the libraries resolved outside the
bundle, asks ``dpkg -S`` which package owns each, and prints a ``Depends:`` value (glibc with the highest
symbol version the bundle asks for). A library that no file of the bundle provides and this machine lacks
cannot be named: that is an error, with the libraries and the files that want them.

    python packaging/linux_depends.py build/linux/dist/whisperdesk          # -> "libc6 (>= 2.28), libegl1, …"
    python packaging/linux_depends.py --libraries FOLDER                    # the libraries, one a line
"""

from __future__ import annotations

import argparse
import os
import re
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

# Libraries renamed in the 64-bit time_t transition (Ubuntu 24.04, Debian 13): accept either name.
T64_RENAMED = {
    "libglib2.0-0",
    "libasound2",
    "libssl3",
    "libgtk-3-0",
    "libatk1.0-0",
    "libcups2",
    "libpng16-16",
}
_GLIBC_VERSION = re.compile(rb"GLIBC_(2\.\d+)")
_LDD_LINE = re.compile(r"^\s*(\S+)\s*=>\s*(not found|\S+)")


def elf_files(root: Path) -> list[Path]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file():
                continue
            with path.open("rb") as fh:
                if fh.read(4) == b"\x7fELF":
                    found.append(path)
    return sorted(found)


def needed_sonames(path: Path) -> set[str]:
    """The libraries an ELF file names itself (DT_NEEDED), not the ones those pull in: the packages of the
    latter are their own packages' dependencies, not ours."""
    data = path.read_bytes()
    if data[4] != 2 or data[5] != 1:  # only 64-bit little-endian (amd64, arm64) is packaged
        return set()
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return set()
    entries = [struct.unpack_from("<qQ", data, dynamic[0] + off) for off in range(0, dynamic[1], 16)]
    strtab = next((val for tag, val in entries if tag == 5), None)
    if strtab is None:
        return set()
    base = next((off + strtab - vaddr for vaddr, off, size in loads if vaddr <= strtab < vaddr + size), None)
    if base is None:
        return set()
    names = set()
    for tag, val in entries:
        if tag == 1:
            end = data.index(b"\0", base + val)
            names.add(data[base + val : end].decode())
    return names


def linked_libraries(root: Path, files: list[Path]) -> tuple[dict[str, set[Path]], dict[str, set[Path]]]:
    """(system library path -> files naming it, unresolved soname -> files naming it), direct needs only;
    ``ldd`` resolves them as the loader would."""
    bundled_names = {p.name for p in files}
    env = {**os.environ, "LD_LIBRARY_PATH": str(root / "_internal"), "LC_ALL": "C"}
    system: dict[str, set[Path]] = defaultdict(set)
    missing: dict[str, set[Path]] = defaultdict(set)
    for elf in files:
        direct = needed_sonames(elf)
        out = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, env=env, check=False).stdout
        for line in out.splitlines():
            match = _LDD_LINE.match(line)
            if not match or match.group(1) not in direct:
                continue
            soname, target = match.groups()
            if target == "not found":
                if soname not in bundled_names:  # bundled ones load through the rpath or a preload
                    missing[soname].add(elf)
            elif not Path(target).resolve().is_relative_to(root.resolve()):
                system[target].add(elf)
    return system, missing


def owning_packages(paths: list[str]) -> dict[str, str]:
    """Library path -> the installed package that owns it (one ``dpkg -S`` for all of them)."""
    spellings: dict[str, str] = {}
    for path in paths:
        for p in {path, str(Path(path).resolve())}:  # merged /usr: dpkg may know either spelling
            spellings[p] = path
            spellings[p[4:] if p.startswith("/usr/") else "/usr" + p] = path
    out = subprocess.run(["dpkg", "-S", *spellings], capture_output=True, text=True, check=False).stdout
    owners: dict[str, str] = {}
    for line in out.splitlines():
        package, _, owned = line.partition(": ")
        if owned in spellings and "diversion" not in package:
            owners[spellings[owned]] = package.split(",")[0].split(":")[0].strip()
    return owners


def glibc_floor(files: list[Path]) -> str:
    best = (2, 0)
    for path in files:
        for raw in set(_GLIBC_VERSION.findall(path.read_bytes())):
            major, minor = (int(x) for x in raw.decode().split("."))
            best = max(best, (major, minor))
    return f"{best[0]}.{best[1]}"


def depends(root: Path) -> tuple[str, list[str]]:
    files = elf_files(root)
    system, missing = linked_libraries(root, files)
    problems = [
        f"{soname} (wanted by {', '.join(sorted(str(p.relative_to(root)) for p in users)[:3])})"
        for soname, users in sorted(missing.items())
    ]
    owners = owning_packages(sorted(system))
    problems += [f"{lib} belongs to no installed package" for lib in sorted(system) if lib not in owners]
    packages = set(owners.values())
    entries = []
    for package in sorted(packages):
        if package == "libc6":
            entries.append(f"libc6 (>= {glibc_floor(files)})")
        elif package in T64_RENAMED:
            entries.append(f"{package} | {package}t64")
        else:
            entries.append(package)
    return ", ".join(entries), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the frozen app's folder (the one holding _internal/)")
    parser.add_argument("--libraries", action="store_true", help="list the system libraries instead")
    args = parser.parse_args(argv)
    root = args.folder.resolve()
    if args.libraries:
        system, missing = linked_libraries(root, elf_files(root))
        owners = owning_packages(sorted(system))
        for lib in sorted(system):
            print(f"{lib}\t{owners.get(lib, '?')}\t{len(system[lib])} files")
        for soname in sorted(missing):
            print(f"{soname}\tNOT FOUND\t{len(missing[soname])} files")
        return 0
    line, problems = depends(root)
    if problems:
        print(
            "linux_depends: cannot name the package of these libraries the bundle links to; install them "
            "on the build machine (or drop what needs them in packaging/whisperdesk.spec):",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
