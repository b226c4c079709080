"""Layer-CAM: feature maps weighted pixel by pixel by their positive gradients."""
from .base import CamExplainer  # first: TensorFlow started quietly (..runtime)
from tf_keras_vis.layercam import Layercam


class LayerCam(CamExplainer):
    """Layer-CAM (Jiang et al. 2021) through tf-keras-vis."""

    name = "layercam"
    visualization_class = Layercam
