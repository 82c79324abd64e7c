"""Speaker labels ("who said what"): embeddings, clustering and assignment of speakers to transcript text."""
