"""`python -m fmd.explain`: the command line in fmd.explain.cli."""
from fmd.explain.cli import entry

entry()
