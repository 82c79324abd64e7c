"""The Qt-free core: settings, engine, job store, watcher, audio, outputs.

Nothing under this package may import Qt (enforced by tests/test_architecture.py), so the CLI and the
headless watcher run without a display and the core is testable without an event loop.
"""
