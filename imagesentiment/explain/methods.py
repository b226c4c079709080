"""The methods by name, and ``explain(model, images, method, target)``.

An explainer is built once per model and method (and options) and reused:
tf-keras-vis objects and traced functions are not rebuilt on every call. The
cache holds models weakly, so it does not keep a discarded model alive.
"""
from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from ..runtime import keras
from ..models.build import class_names, ensemble_members, find_target_layer
from ..models.views import model_views
from .base import Explainer, Target
from .ensemble import EnsembleExplainer
from .finecam import FineCam, finer_layer
from .gradcam import GradCam
from .gradcam_plus_plus import GradCamPlusPlus
from .layercam import LayerCam
from .saliency import Saliency, SmoothGrad
from .scorecam import FasterScoreCam, ScoreCam

METHODS: dict[str, type[Explainer]] = {cls.name: cls for cls in (
    GradCam, GradCamPlusPlus, ScoreCam, FasterScoreCam, LayerCam, FineCam, Saliency, SmoothGrad)}

_CACHE: "weakref.WeakKeyDictionary[keras.Model, dict[tuple, Explainer]]" = weakref.WeakKeyDictionary()


def default_method(model: keras.Model) -> str:
    """The method ``explain`` uses when none is named: Fine Grad-CAM (as faithful as Grad-CAM on the shipped model,
    and finer: docs/explanations.md) where the model has a feature map of twice its target layer's resolution
    (its first member's, for an ensemble), else Grad-CAM."""
    member = ensemble_members(model)[0]
    try:
        finer_layer(member, find_target_layer(member))
    except ValueError:
        return GradCam.name
    return FineCam.name


def get_explainer(model: keras.Model, method: str = "gradcam", **options: Any) -> Explainer:
    """The cached explainer of ``method`` for ``model``; ``options`` go to the method's class
    (``classes``, ``layer`` for CAM methods, ``max_N`` for Score-CAM, ``smooth_samples`` for SmoothGrad).
    An ensemble, or a model with test-time views, gets its members' explainers averaged
    (:class:`EnsembleExplainer`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose one of {list(METHODS)}")
    options["classes"] = class_names(model, options.get("classes"))  # the names it carries now: part of the key
    key = (method, tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items())))
    built = _CACHE.setdefault(model, {})
    if key not in built:
        members = ensemble_members(model)
        built[key] = (METHODS[method](model, **options) if members == [model] else
                      EnsembleExplainer([get_explainer(member, method, **options) for member in members],
                                        model_views(model)))
    return built[key]


def explain(model: keras.Model, images: np.ndarray, method: str = "gradcam", target: Target = None,
            **options: Any) -> np.ndarray:
    """Heat maps ``(B, H, W)`` in [0, 1] for a float32 batch ``(B, H, W, 3)`` in [0, 255] at the
    model's input size. ``target``: None (the predicted class), a class name or index, or one per image.
    """
    return get_explainer(model, method, **options)(images, target)
