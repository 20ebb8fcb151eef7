"""`python -m fmd.demo_data`: the command line in fmd.demo_data.cli."""
from fmd.demo_data.cli import entry

entry()
