from gitsync.cli import main

main()
