"""Models beyond the assignment's three."""
