"""explain: LIME beside saliency, Grad-CAM and the mask head (`python -m fmd.explain`, `faces-explain`).

`fmd.explain.lime_map.lime_map(image, model)` is the explainer; `python -m fmd.explain.compare` draws
the four explanations of the same fake faces side by side.
"""
