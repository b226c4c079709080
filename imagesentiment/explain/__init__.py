"""Explanations: where in the image a sentiment prediction comes from.

``explain(model, images, method="gradcam", target=None)`` gives heat maps for a
batch with any method of :data:`METHODS` (tf-keras-vis on the model's logits);
:class:`GradCamPredictor` gives prediction and Grad-CAM in one compiled pass.
"""
from .base import CamExplainer, Explainer, class_names, clean_maps, feature_layers, load_images, resolve_targets
from .faithfulness import Curves, evaluate, perturbation_curves
from .files import explain_files
from .methods import METHODS, explain, get_explainer
from .onepass import GradCamPredictor, normalize_maps
from .plots import (explanation_figure, explanation_panel, explanation_pictures, feature_maps_figure, filters_figure,
                    grid_figure, overlay, resize_map, save_explanation, save_figure)

__all__ = [
    "METHODS", "CamExplainer", "Curves", "Explainer", "GradCamPredictor", "class_names", "clean_maps", "evaluate",
    "explain", "explain_files", "explanation_figure", "explanation_panel", "explanation_pictures", "feature_layers",
    "feature_maps_figure", "filters_figure", "get_explainer", "grid_figure", "load_images", "normalize_maps",
    "overlay", "perturbation_curves", "resize_map", "resolve_targets", "save_explanation", "save_figure",
]
