"""The registry of trainable baseline models, keyed by the name in `--models` and manifests.

Each built-in model's module registers its class when imported; `load_models` imports them
all, so `trailguard baseline train` and artifact loading see every model without scanning.
"""

from __future__ import annotations

import importlib

from detector.baseline.protocol import TrainableModel
from detector.registry import Registry

MODELS: Registry[type[TrainableModel]] = Registry("baseline model")

BUILT_IN = ("detector.baseline.action_model",)


def load_models() -> Registry[type[TrainableModel]]:
    """MODELS with every built-in model registered."""
    for module in BUILT_IN:
        importlib.import_module(module)
    return MODELS
