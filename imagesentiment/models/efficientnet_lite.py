"""EfficientNet-Lite0 and Lite2 as Keras functional backbones, loading framework-neutral ``.npz`` weights.

The Lite family (Google's TPU reference) is EfficientNet without squeeze-and-excitation, with ReLU6
and a fixed stem and head, made for int8 on phones. The builders take Keras Applications' arguments
and name their layers as ``keras.applications.EfficientNetB0`` does (``block2a_expand_conv``, ...,
``top_activation``). Like ``keras.applications.MobileNetV2``, they expect inputs already scaled,
here ``(pixels - 127) / 128`` (:data:`~imagesentiment.models.backbones.LITE_SCALE`, ``LITE_OFFSET``), which the transfer model puts in front.

A weights file holds one float32 array per tensor under its PyTorch name (``_conv_stem.weight``,
``_blocks.N._depthwise_conv.weight``, ``_bn1.running_var``, ...) in PyTorch layout; the classifier is
not in it, so only ``include_top=False`` is built.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from ..runtime import keras

EPSILON = 1e-3

# per stage: kernel, repeats, input filters, output filters, expansion, first stride
STAGES: dict[str, list[tuple[int, int, int, int, int, int]]] = {
    "lite0": [(3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
              (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1)],
    "lite2": [(3, 1, 32, 16, 1, 1), (3, 3, 16, 24, 6, 2), (5, 3, 24, 48, 6, 2), (3, 4, 48, 88, 6, 2),
              (5, 4, 88, 120, 6, 1), (5, 5, 120, 208, 6, 2), (3, 1, 208, 352, 6, 1)],
}
STEM, HEAD = 32, 1280


def blocks(variant: str) -> list[dict]:
    """The variant's blocks in order: name, kernel, stride, expansion, filters in and out, residual."""
    out = []
    for stage, (kernel, repeats, filters_in, filters_out, expand, stride) in enumerate(STAGES[variant]):
        for r in range(repeats):
            first = r == 0
            out.append({"name": f"block{stage + 1}{chr(ord('a') + r)}", "kernel": kernel,
                        "stride": stride if first else 1, "expand": expand,
                        "in": filters_in if first else filters_out, "out": filters_out, "residual": not first})
    return out


def _conv_bn(x: keras.KerasTensor, filters: int | None, kernel: int, stride: int, name: str, bn: str,
             activation: str | None) -> keras.KerasTensor:
    """A bias-free convolution (depthwise when ``filters`` is None), BatchNorm, then ReLU6 if named."""
    if filters is None:
        x = keras.layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False, name=name)(x)
    else:
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False, name=name)(x)
    x = keras.layers.BatchNormalization(epsilon=EPSILON, name=bn)(x)
    return keras.layers.ReLU(6.0, name=activation)(x) if activation else x


def _block(x: keras.KerasTensor, spec: dict, prefix: str) -> keras.KerasTensor:
    """Inverted residual: 1x1 expansion (absent at expansion 1), depthwise, 1x1 linear projection."""
    name, inputs = prefix + spec["name"], x
    if spec["expand"] != 1:
        x = _conv_bn(x, spec["in"] * spec["expand"], 1, 1, f"{name}_expand_conv", f"{name}_expand_bn",
                     f"{name}_expand_activation")
    x = _conv_bn(x, None, spec["kernel"], spec["stride"], f"{name}_dwconv", f"{name}_bn", f"{name}_activation")
    x = _conv_bn(x, spec["out"], 1, 1, f"{name}_project_conv", f"{name}_project_bn", None)
    return keras.layers.Add(name=f"{name}_add")([x, inputs]) if spec["residual"] else x


def build(variant: str, input_shape: Sequence[int | None] | None = None,
          input_tensor: keras.KerasTensor | None = None, include_top: bool = False,
          weights: str | os.PathLike | None = None, prefix: str = "") -> keras.Model:
    """EfficientNet-Lite ``variant`` ("lite0" or "lite2") without its classifier, ending at
    ``top_activation`` (the 1280-channel feature map). Any input size works; ``weights`` is a ``.npz``
    file of the same variant or None (random). ``prefix`` starts every layer name (two backbones in one graph)."""
    if variant not in STAGES:
        raise ValueError(f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(STAGES)}")
    if include_top:
        raise ValueError("EfficientNet-Lite is built without its classifier only (include_top=False)")
    if weights == "imagenet":
        raise ValueError(f"EfficientNet-Lite's ImageNet weights are not in Keras Applications: give the "
                         f"efficientnet_{variant}_imagenet.npz file")
    inputs = input_tensor if input_tensor is not None else keras.Input(tuple(input_shape or (None, None, 3)))
    p = prefix
    x = _conv_bn(inputs, STEM, 3, 2, f"{p}stem_conv", f"{p}stem_bn", f"{p}stem_activation")
    for spec in blocks(variant):
        x = _block(x, spec, p)
    x = _conv_bn(x, HEAD, 1, 1, f"{p}top_conv", f"{p}top_bn", f"{p}top_activation")
    model = keras.Model(keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs, x,
                        name=f"{p}efficientnet_{variant}")
    if weights is not None:
        load_weights(model, variant, weights, prefix)
    return model


def _tensor_names(variant: str) -> list[tuple[str, str, str]]:
    """(PyTorch tensor prefix, Keras layer name, kind) for each convolution and BatchNorm, in order."""
    names = [("_conv_stem", "stem_conv", "conv"), ("_bn0", "stem_bn", "bn")]
    for i, spec in enumerate(blocks(variant)):
        n = spec["name"]
        if spec["expand"] != 1:
            names += [(f"_blocks.{i}._expand_conv", f"{n}_expand_conv", "conv"), (f"_blocks.{i}._bn0", f"{n}_expand_bn", "bn")]
        names += [(f"_blocks.{i}._depthwise_conv", f"{n}_dwconv", "depthwise"), (f"_blocks.{i}._bn1", f"{n}_bn", "bn"),
                  (f"_blocks.{i}._project_conv", f"{n}_project_conv", "conv"), (f"_blocks.{i}._bn2", f"{n}_project_bn", "bn")]
    return names + [("_conv_head", "top_conv", "conv"), ("_bn1", "top_bn", "bn")]


def load_weights(model: keras.Model, variant: str, path: str | os.PathLike, prefix: str = "") -> None:
    """Set the convolutions and BatchNorms of ``model`` (built by :func:`build`) from ``path``; a file
    whose tensors are not exactly this variant's is refused, naming the first tensor that differs."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"EfficientNet-{variant.title()} weights file {path} not found; expected "
                                f"efficientnet_{variant}_imagenet.npz")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception:  # not an npz (a Keras .h5, say), torn, or holding pickled objects
        raise ValueError(f"{path}: not a readable .npz weights file; expected EfficientNet-{variant.title()} "
                         f"weights (efficientnet_{variant}_imagenet.npz)") from None
    wanted: list[str] = []
    for source, name, kind in _tensor_names(variant):
        layer = model.get_layer(prefix + name)
        keys = ([f"{source}.{p}" for p in ("weight", "bias", "running_mean", "running_var")] if kind == "bn"
                else [f"{source}.weight"])
        wanted += keys
        values = []
        for key, variable in zip(keys, layer.weights):
            if key not in arrays:
                raise ValueError(f"{path}: no tensor {key}, which EfficientNet-{variant.title()} needs for "
                                 f"layer {name}: not efficientnet_{variant} weights")
            value = arrays[key]
            if kind == "conv":
                value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
            elif kind == "depthwise":
                value = value.transpose(2, 3, 0, 1) if value.ndim == 4 else value
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(f"{path}: tensor {key} has shape {arrays[key].shape}, but layer {name} of "
                                 f"EfficientNet-{variant.title()} needs {_torch_shape(variable.shape, kind)}: "
                                 f"not efficientnet_{variant} weights")
            values.append(value.astype(np.float32))
        layer.set_weights(values)
    extra = sorted(set(arrays) - set(wanted))
    if extra:
        raise ValueError(f"{path}: tensor {extra[0]} is not part of EfficientNet-{variant.title()} "
                         f"({len(extra)} extra): not efficientnet_{variant} weights")


def _torch_shape(shape: Sequence[int], kind: str) -> tuple[int, ...]:
    """A Keras kernel shape in the file's PyTorch layout, for messages."""
    if kind == "conv" and len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    if kind == "depthwise" and len(shape) == 4:
        return (shape[2], shape[3], shape[0], shape[1])
    return tuple(shape)


def lite0(**kwargs) -> keras.Model:
    """EfficientNet-Lite0 (native 224 px); Keras Applications' arguments."""
    return build("lite0", **kwargs)


def lite2(**kwargs) -> keras.Model:
    """EfficientNet-Lite2 (native 260 px); Keras Applications' arguments."""
    return build("lite2", **kwargs)
