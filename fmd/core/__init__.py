"""Shared plumbing: devices, atomic files, interrupts, run names, metrics, the model registry."""
