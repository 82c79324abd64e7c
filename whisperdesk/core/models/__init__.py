"""Models: what the app can load, where it comes from and whether the copy on disk is intact."""
