"""Models beyond the assignment's three, the mask head, and the catalogue of the registry's models."""
