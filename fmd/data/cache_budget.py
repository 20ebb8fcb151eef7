"""How much memory the decoded images of a run may take: one rule for the cache and the prefetch.

Imports no torch (fmd.data.prefetch runs before torch is imported).
"""
from __future__ import annotations

import os

BUDGET_ENV = 'FACES_DECODE_CACHE_MIB'  # total cache size in MiB; 0 turns the cache off


def cache_budget_bytes() -> int:
    """$FACES_DECODE_CACHE_MIB, else a quarter of the physical memory, and at most half of the
    free space of /dev/shm (where Linux keeps shared memory; Docker's default is only 64 MiB)."""
    if os.environ.get(BUDGET_ENV, '').strip():
        return max(0, int(os.environ[BUDGET_ENV])) * 2 ** 20
    try:
        budget = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // 4
    except (AttributeError, ValueError, OSError):
        budget = 2 ** 30
    if os.path.isdir('/dev/shm'):
        shm = os.statvfs('/dev/shm')
        budget = min(budget, shm.f_bavail * shm.f_frsize // 2)
    return budget
