"""Output folders shared by every script (the assignment's names)."""

OUTPUT_DIR = 'out'
CHECKPOINT_DIR = 'checkpoints'
FIGURES_DIR = 'figures'
