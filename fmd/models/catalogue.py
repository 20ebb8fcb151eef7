"""Every model the registry builds by name: importing a model's file registers it (register_model).

Adding a model is one import here (plus a line in runs.ASSIGNMENT_RUNS to train it in the chain).
fmd.core.registry imports this module on its first lookup: the registry sits below the models.
"""
import bonus_model  # noqa: F401  BonusNet
import models  # noqa: F401  SimpleNet, XceptionBased
from fmd.models import efficientnet_lite  # noqa: F401  EfficientNetLite0
