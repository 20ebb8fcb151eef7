"""reporting: the report that answers the assignment's questions from one run (`python -m fmd.reporting`)."""
