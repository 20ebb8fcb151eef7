"""detect: verdicts on real photos and videos from a trained checkpoint (`python -m fmd.detect`)."""
