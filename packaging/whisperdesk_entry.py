"""The frozen app's entry point: the ``whisperdesk`` command, and the interpreter for doctor's probes.

A frozen build has no Python beside it, so ``sys.executable`` is this program. ``whisperdesk doctor`` runs
its CUDA probes as ``sys.executable -c CODE ARGS...`` in a child process (a crash while loading cuBLAS must not
take the app down); here that form runs CODE the way ``python -c`` would, with the bundled libraries.
"""

from __future__ import annotations

import sys


def _run_code(code: str, args: list[str]) -> None:
    sys.argv = ["-c", *args]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "-c":
        _run_code(sys.argv[2], sys.argv[3:])
        sys.exit(0)
    from whisperdesk.cli import main

    sys.exit(main())
