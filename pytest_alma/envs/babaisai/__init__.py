"""Baba Is AI (arXiv 2407.13729), re-implemented in pure Python from the published description."""
