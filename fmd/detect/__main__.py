"""`python -m fmd.detect`: the command line in fmd.detect.cli."""
from fmd.detect.cli import entry

entry()
