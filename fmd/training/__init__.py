"""Training helpers beyond the assignment's Trainer."""
