"""`python -m fmd.reporting`: the command line in fmd.reporting.cli."""
from fmd.reporting.cli import entry

entry()
