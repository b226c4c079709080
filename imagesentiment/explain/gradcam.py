"""Grad-CAM: the target layer's feature maps weighted by the spatial mean of their gradients."""
from .base import CamExplainer  # first: TensorFlow started quietly (..runtime)
from tf_keras_vis.gradcam import Gradcam


class GradCam(CamExplainer):
    """Grad-CAM (Selvaraju et al. 2017) through tf-keras-vis."""

    name = "gradcam"
    visualization_class = Gradcam
