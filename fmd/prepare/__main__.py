"""`python -m fmd.prepare`: the command line in fmd.prepare.cli."""
from fmd.prepare.cli import entry

entry()
