"""prepare: real photos and videos -> a face-cropped dataset (`python -m fmd.prepare`)."""
