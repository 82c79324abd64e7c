"""Qt objects without widgets: the job runner, the watcher bridge, the GPU poller, throttles."""
