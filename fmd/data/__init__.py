"""Data: face landmarks and self-blended training fakes made from real faces."""
