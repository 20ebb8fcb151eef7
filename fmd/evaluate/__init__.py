"""evaluate: score checkpoints on other datasets, with intervals (`python -m fmd.evaluate`)."""
