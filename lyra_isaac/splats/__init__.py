"""Ingest: splat PLY formats, camera paths, the GaussianScene model and cleaning."""
