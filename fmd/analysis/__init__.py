"""What the analysis scripts, the report and the tools share: a trained model and its test split
(inputs), Grad-CAM of a model (grad_cam) and vanilla-gradient saliency maps (saliency)."""
