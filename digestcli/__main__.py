"""`python -m digestcli` runs the command line."""

from digestcli.cli import main

main()
