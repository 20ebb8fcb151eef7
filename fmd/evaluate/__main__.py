"""`python -m fmd.evaluate`: the command line in fmd.evaluate.cli."""
from fmd.evaluate.cli import entry

entry()
