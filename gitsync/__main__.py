"""python -m gitsync: the same entry point as the gitsync command."""

from gitsync.entry import main

main()
