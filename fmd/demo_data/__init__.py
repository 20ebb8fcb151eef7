"""Procedural stand-in for the course datasets: drawn faces, face swaps and GAN-like upsampled fakes.

Modules, in reading order: layout (image size, folders, scales), seeding (random streams keyed by
image), faces (identity and scene descriptions), canvas and background (drawing primitives), render
(one face), camera (lens, sensor, JPEG), forgeries (face swap, transposed-convolution upsampling),
images (one image from its key), manifest (MANIFEST.json), build (atomic build, reuse, workers).
The command line is fmd.demo_data.
"""
