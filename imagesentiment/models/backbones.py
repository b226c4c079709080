"""The backbone registry: each backbone a transfer model can stand on, by name, with the scaling it expects, the
layer Grad-CAM reads, the input size its weights were trained at and whether two can share one graph.

No TensorFlow here: a configuration is checked against this table without starting it. A backbone's
constructor is imported when a model is built (:attr:`Backbone.build`). Adding a backbone is one entry of
:data:`BACKBONES`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

if TYPE_CHECKING:
    import keras

# EfficientNet-Lite's input scaling, (pixels - 127) / 128, and the sizes its ImageNet weights were trained at
LITE_SCALE, LITE_OFFSET = 1 / 128, -127 / 128
LITE_SIZES = {"lite0": 224, "lite2": 260}


@dataclass(frozen=True)
class Backbone:
    """A Keras Applications-style constructor named ``"module:function"`` (``keras.applications:...`` or
    ``efficientnet_lite:...``), the scaling it expects, its last 4-D layer and the input size its weights were
    trained at; ``fusable`` if its builder takes a layer-name ``prefix`` (two backbones in one graph)."""

    builder: str
    scale: float | None
    offset: float
    target_layer: str
    native_size: int
    fusable: bool = False

    @property
    def build(self) -> Callable[..., "keras.Model"]:
        """The constructor, imported now (TensorFlow starts, quietly: :mod:`imagesentiment.runtime`)."""
        module, _, function = self.builder.partition(":")
        if module == "keras.applications":
            from ..runtime import keras
            return getattr(keras.applications, function)
        from . import efficientnet_lite  # the one module of this package that builds backbones
        return getattr(efficientnet_lite, function)


BACKBONES: dict[str, Backbone] = {
    "mobilenet_v2": Backbone("keras.applications:MobileNetV2", 1 / 127.5, -1.0, "out_relu", 224),
    "efficientnet_b0": Backbone("keras.applications:EfficientNetB0", None, 0.0, "top_activation", 224),
    "efficientnet_lite0": Backbone("efficientnet_lite:lite0", LITE_SCALE, LITE_OFFSET, "top_activation",
                                   LITE_SIZES["lite0"], fusable=True),
    "efficientnet_lite2": Backbone("efficientnet_lite:lite2", LITE_SCALE, LITE_OFFSET, "top_activation",
                                   LITE_SIZES["lite2"], fusable=True),
}


def backbone_names(backbone: str | Sequence[str]) -> list[str]:
    """``model.backbone`` as a list: one name, or the backbones a fused model puts side by side."""
    return [backbone] if isinstance(backbone, str) else list(backbone)


def fusable(names: Sequence[str]) -> bool:
    """Whether ``names`` can be fused into one graph: distinct backbones whose builders take a prefix."""
    return len(set(names)) == len(names) > 1 and all(BACKBONES[b].fusable for b in names)


@functools.lru_cache(maxsize=None)
def backbone_layers(backbone: str) -> tuple[str, ...]:
    """The names of ``backbone``'s layers, from a copy built with random weights on a small input (once a
    process: a configuration is checked when it is loaded and again when it trains). Starts TensorFlow."""
    return tuple(layer.name for layer in BACKBONES[backbone].build(input_shape=(64, 64, 3), include_top=False,
                                                                   weights=None).layers)


def layer_choices(names: Sequence[str]) -> str:
    """Where a backbone with layers ``names`` may end: its last residual blocks' outputs and its last layer."""
    ends = [n for n in names if n.endswith("_add")][-6:]
    return f"its last residual blocks end at {', '.join(ends)}; its last layer is {names[-1]}"
