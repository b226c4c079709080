"""Grad-CAM++: channel weights from higher-order gradients, which separates several instances better."""
from .base import CamExplainer  # first: TensorFlow started quietly (..runtime)
from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus


class GradCamPlusPlus(CamExplainer):
    """Grad-CAM++ (Chattopadhyay et al. 2018) through tf-keras-vis."""

    name = "gradcam++"
    visualization_class = GradcamPlusPlus
