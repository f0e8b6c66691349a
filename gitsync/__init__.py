"""gitsync: keep EnOS batch-processing workflows in git."""

__version__ = "0.1.0"
