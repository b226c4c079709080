"""The ``tf.data`` input pipeline: files to batches of ``(images, labels)``.

Read top to bottom: paths and labels -> shuffle -> parallel read, decode and
resize -> (cache) -> augment -> batch -> prefetch. Images leave the pipeline as
float32 RGB in [0, 255]; each model scales them itself, so the exported model
takes the same input. Nothing is held in memory unless ``cache`` asks for it.
"""
from __future__ import annotations

import re
from typing import Iterator, Sequence, TypeVar

import numpy as np

from ..runtime import tf
from .constants import MAX_PIXELS, Augmentation
from .magic import EMPTY, JPEG_XL, SIGNATURES, UNKNOWN_FORMAT, UNSUPPORTED_JPEG_XL
from .sources import ImageSet

AUTOTUNE = tf.data.AUTOTUNE
T = TypeVar("T")


# TensorFlow's JPEG decoder refuses an image of more than 2**29 bytes of RGB, saying only "Invalid JPEG data"
JPEG_DECODER_PIXELS = 2**29 // 3


def _big_endian(data: tf.Tensor, start: int, length: int, little: bool = False) -> tf.Tensor:
    digits = tf.cast(tf.io.decode_raw(tf.strings.substr(data, start, length), tf.uint8), tf.int64)
    weights = tf.constant([256 ** i for i in (range(length) if little else reversed(range(length)))], tf.int64)
    return tf.reduce_sum(digits * weights)


GIF_MAX_STEPS = 16_384  # x 16 sub-blocks: a GIF with more than ~262,000 data blocks (> 64 MB) is refused
_GIF_UNROLL = 16
_TOO_LARGE = 2 ** 62


@tf.function(reduce_retracing=True)  # a graph even when called eagerly: the walk is a loop
def _gif_pixels(data: tf.Tensor, limit: int) -> tf.Tensor:
    """Pixels a GIF makes the decoder allocate: the screen, or the sum of its frames' areas (the
    decoder reads every frame of an animation, even when only the first is kept). Walks the
    blocks without decoding; stops once past ``limit``; too many blocks to walk counts as too large."""
    raw = tf.io.decode_raw(tf.strings.join([data, tf.constant(b"\0" * 16)]), tf.uint8)
    n = tf.size(raw) - 16
    zero = tf.constant(0, tf.int32)

    def u16(head: tf.Tensor, at: int) -> tf.Tensor:
        return tf.cast(head[at], tf.int64) + 256 * tf.cast(head[at + 1], tf.int64)

    def table(packed: tf.Tensor) -> tf.Tensor:  # bytes of a colour table announced by a packed field
        return tf.where(packed >= 128, 3 * tf.bitwise.left_shift(tf.constant(2, tf.int32), packed % 8), zero)

    header = tf.cast(raw[:13], tf.int32)
    screen = u16(header, 6) * u16(header, 8)

    def body(step, pos, total, inside):
        head = tf.cast(tf.gather(raw, pos + tf.range(10)), tf.int32)  # the block's first bytes
        image, extension = ~inside & (head[0] == 0x2C), ~inside & (head[0] == 0x21)
        total += tf.where(image, u16(head, 5) * u16(head, 7), tf.constant(0, tf.int64))
        pos = tf.where(inside, pos, tf.where(image, pos + 11 + table(head[9]), tf.where(extension, pos + 2, n)))
        inside = inside | image | extension
        for _ in range(_GIF_UNROLL):  # skip data sub-blocks (a size byte, then that many bytes; 0 ends them)
            size = tf.cast(tf.gather(raw, tf.minimum(pos, n)), tf.int32)
            pos = tf.where(inside, pos + size + 1, pos)
            inside = inside & (size != 0)
        return step + 1, tf.minimum(pos, n), total, inside

    steps, pos, total, _ = tf.while_loop(
        lambda step, pos, total, inside: (pos < n) & (total <= limit) & (step < GIF_MAX_STEPS), body,
        (zero, 13 + table(header[10]), tf.constant(0, tf.int64), tf.constant(False)))
    unfinished = (pos < n) & (total <= limit)
    return tf.where(unfinished, tf.constant(_TOO_LARGE, tf.int64), tf.maximum(total, screen))


def _webp_pixels(padded: tf.Tensor) -> tf.Tensor:
    """Width x height from a WebP's first chunk: VP8 (lossy), VP8L (lossless) or VP8X (extended)."""
    chunk = tf.strings.substr(padded, 12, 4)
    lossy = (_big_endian(padded, 26, 2, little=True) % 16384) * (_big_endian(padded, 28, 2, little=True) % 16384)
    bits = _big_endian(padded, 21, 4, little=True)
    lossless = (bits % 16384 + 1) * (bits // 16384 % 16384 + 1)
    extended = (_big_endian(padded, 24, 3, little=True) + 1) * (_big_endian(padded, 27, 3, little=True) + 1)
    return tf.where(chunk == b"VP8X", extended, tf.where(chunk == b"VP8L", lossless, lossy))


def _formats(data: tf.Tensor) -> dict[str, tf.Tensor]:
    """Whether ``data`` starts as a JPEG, PNG, GIF, BMP or WebP file does, by format name."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 12)])
    found = {name: tf.strings.substr(padded, at, len(magic)) == magic for name, (at, magic) in SIGNATURES.items()}
    return {**found, "WebP": found["WebP"] & (tf.strings.substr(padded, 0, 4) == b"RIFF")}


def declared_pixels(data: tf.Tensor, limit: int = MAX_PIXELS) -> tf.Tensor:
    """Width x height as the header of a JPEG, PNG, GIF, BMP or WebP declares it, read without
    decoding the image (for a GIF: the sum over its frames; the walk stops once past ``limit``);
    0 for anything else, which the decoder refuses."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 32)])
    formats = _formats(data)
    return tf.case([
        (formats["JPEG"], lambda: tf.reduce_prod(tf.cast(tf.image.extract_jpeg_shape(data)[:2], tf.int64))),
        (formats["PNG"], lambda: _big_endian(padded, 16, 4) * _big_endian(padded, 20, 4)),
        (formats["GIF"], lambda: _gif_pixels(data, limit)),
        (formats["BMP"], lambda: tf.abs(_big_endian(padded, 18, 4, little=True) * _big_endian(padded, 22, 4,
                                                                                              little=True))),
        (formats["WebP"], lambda: _webp_pixels(padded)),
    ], default=lambda: tf.constant(0, tf.int64))


def is_jpeg_xl(data: tf.Tensor) -> tf.Tensor:
    """Whether ``data`` is a JPEG XL codestream or container: TensorFlow decodes those, but their
    size is not checked here, so they are refused (they are not among the supported formats)."""
    return tf.reduce_any([tf.strings.substr(data, 0, len(magic)) == magic for magic in JPEG_XL])




ANIMATED_WEBP = "unsupported image: an animated WebP (TensorFlow decodes none; save a frame of it as JPEG or PNG)"


def is_animated_webp(data: tf.Tensor) -> tf.Tensor:
    """Whether ``data`` is an animated WebP (its VP8X header's animation flag set), which the decoder refuses with
    a message of its own (``WebP Animation must be 4 channel RGBA``): refused by name, everywhere alike."""
    padded = tf.strings.join([data, tf.constant(b"\0" * 21)])
    flags = tf.io.decode_raw(tf.strings.substr(padded, 20, 1), tf.uint8)[0]
    return (_formats(data)["WebP"] & (tf.strings.substr(padded, 12, 4) == b"VP8X")
            & (tf.bitwise.bitwise_and(flags, 2) > 0))


def decode_and_resize(data: tf.Tensor, image_size: Sequence[int] | None, max_pixels: int = MAX_PIXELS) -> tf.Tensor:
    """Encoded bytes (JPEG, PNG, GIF, BMP, WebP) to a ``(H, W, 3)`` uint8 image at ``image_size`` (None: its own).

    Greyscale, palette and RGBA images become RGB, 16-bit images 8-bit, an
    animated GIF its first frame. An image whose header declares more than
    ``max_pixels`` (or, a JPEG, more than TensorFlow's decoder takes) is refused
    (InvalidArgumentError) before it is decoded.
    """
    declared, none = declared_pixels(data, max_pixels), tf.constant(0, tf.int64)
    formats = _formats(data)
    gif, jpeg = formats["GIF"], formats["JPEG"]
    too_large = f"image too large: its header declares more than {max_pixels} pixels"
    checks = [
        tf.debugging.assert_less_equal(tf.where(gif, none, declared), tf.constant(max_pixels, tf.int64),
                                       message=too_large),
        tf.debugging.assert_less_equal(tf.where(gif, declared, none), tf.constant(max_pixels, tf.int64),
                                       message=f"{too_large} (a GIF: all frames together)"),
        tf.debugging.assert_less_equal(tf.where(jpeg, declared, none), tf.constant(JPEG_DECODER_PIXELS, tf.int64),
                                       message=f"image too large: TensorFlow's JPEG decoder takes at most "
                                       f"{JPEG_DECODER_PIXELS} pixels"),
        tf.debugging.assert_equal(is_jpeg_xl(data), False, message=UNSUPPORTED_JPEG_XL),
        tf.debugging.assert_greater(tf.strings.length(data), 0, message=EMPTY),
        tf.debugging.assert_equal(tf.reduce_any(tf.stack(list(formats.values()))) | is_jpeg_xl(data)
                                  | (tf.strings.length(data) == 0), True, message=UNKNOWN_FORMAT),
        tf.debugging.assert_equal(is_animated_webp(data), False, message=ANIMATED_WEBP)]
    checks = [c for c in checks if c is not None]
    with tf.control_dependencies(checks):  # in a graph: check, then decode
        data = tf.identity(data)
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    if image_size is None:
        return image
    resized = tf.image.resize(image, image_size, antialias=True)
    return tf.saturate_cast(tf.round(resized), tf.uint8)


def refusal(data: tf.Tensor, max_pixels: int = MAX_PIXELS) -> tf.Tensor:
    """Why :func:`decode_and_resize` refuses ``data`` (a string tensor), found without decoding it: for a
    message that names the item of a batch, which the decoder's own error cannot. Data it takes get
    the reason it would have if damaged."""
    header = (tf.data.Dataset.from_tensors(data).map(lambda d: declared_pixels(d, max_pixels)).ignore_errors()
              .concatenate(tf.data.Dataset.from_tensors(tf.constant(-1, tf.int64))).take(1).get_single_element())
    damaged = [(found, lambda name=name: tf.constant(f"Invalid {name} data: truncated or damaged, the decoder "
                                                     "refused it")) for name, found in _formats(data).items()]
    return tf.case([
        (tf.strings.length(data) == 0, lambda: tf.constant(EMPTY)),
        (is_jpeg_xl(data), lambda: tf.constant(UNSUPPORTED_JPEG_XL)),
        (is_animated_webp(data), lambda: tf.constant(ANIMATED_WEBP)),
        (header > max_pixels, lambda: tf.strings.format("image too large: its header declares {} pixels, more than {}",
                                                        (header, max_pixels))),
        *damaged], default=lambda: tf.constant(UNKNOWN_FORMAT))


def decode_or_reason(data: bytes, image_size: Sequence[int] | None,
                     max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray | None, str]:
    """Float32 ``(H, W, 3)`` pixels of encoded bytes, as :func:`decode_and_resize` makes them, and
    ``""``; or None and why the decoder refused them (the first line of its message, without
    TensorFlow's function and op names)."""
    try:
        return tf.cast(decode_and_resize(tf.constant(data), image_size, max_pixels), tf.float32).numpy(), ""
    except tf.errors.InvalidArgumentError as exc:
        return None, re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*", "", exc.message.splitlines()[0]).strip()


PIXEL_RANGE = (-0.5, 255.5)  # RGB on the 8-bit scale, with half a step for rounding
UNIT_SCALE = "look like the [0, 1] scale; the model reads RGB on the 8-bit scale [0, 255]: multiply by 255"


def check_pixel_range(pixels: np.ndarray, name: str) -> None:
    """Refuse pixels that are not RGB on the 8-bit scale the pipeline makes, naming them: non-finite
    values, values outside [0, 255], or floats all within (0, 1] (the scale many image readers give)."""
    low, high = float(np.min(pixels)), float(np.max(pixels))
    if not (np.isfinite(low) and np.isfinite(high)) or low < PIXEL_RANGE[0] or high > PIXEL_RANGE[1]:
        raise ValueError(f"{name}: pixel values must lie in [0, 255] (RGB on the 8-bit scale); this array "
                         f"holds values from {low} to {high}")
    if np.issubdtype(np.asarray(pixels).dtype, np.floating) and 0 < high <= 1:
        raise ValueError(f"{name}: float pixel values from {low} to {high} {UNIT_SCALE} (or pass uint8)")


def checked_batch(pixels: np.ndarray) -> np.ndarray:
    """A float batch as the exported pixel signatures take it, else a ``ValueError`` naming the check, as they
    refuse it: ``(B, H, W, 3)``, each image's values as :func:`check_pixel_range` takes them."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 4 or pixels.shape[-1] != 3:
        raise ValueError(f"images must have 3 channels (RGB), (batch, height, width, 3), not {pixels.shape}")
    for index, image in enumerate(pixels):
        check_pixel_range(image, f"image {index} of the batch")
    return pixels


def rgb_array(image: np.ndarray, name: str = "an image array") -> np.ndarray:
    """An image array as RGB on the uint8 scale, as the decoder makes files: greyscale ``(H, W)`` or
    ``(H, W, 1)`` repeated, the alpha of ``(H, W, 4)`` dropped, uint16 reduced to 8 bits. Anything
    else (other shapes, no pixels, booleans, non-finite values, values outside [0, 255], floats all
    within (0, 1], the scale many readers give) is refused naming the array, rather than scored as
    something it is not."""
    if image.dtype == bool or not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise ValueError(f"{name}: pixels must be numbers (uint8, uint16, or float in [0, 255]), not {image.dtype}")
    image = image[..., None] if image.ndim == 2 else image
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"{name}: an image array must be (H, W, 3) RGB, (H, W, 4) RGBA or (H, W[, 1]) greyscale, "
                         f"not {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{name}: an image array of shape {image.shape} has no pixels")
    image = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)  # as the decoder reduces a 16-bit PNG
    if image.dtype != np.uint8:
        check_pixel_range(image, name)
    return image


def augment(image: tf.Tensor, seed: tf.Tensor, settings: Augmentation = Augmentation()) -> tf.Tensor:
    """A random flip, crop-and-zoom, rotation, mild colour jitter and random erasing, as strong as
    ``settings`` says, reproducible from ``seed`` (shape [2])."""
    seed = tf.cast(seed, tf.int64)
    flip, crop, scale, bright, contrast, saturation = tf.unstack(tf.random.experimental.stateless_split(seed, 6))
    size = tf.shape(image)[:2]
    image = tf.image.stateless_random_flip_left_right(image, flip)
    keep = tf.random.stateless_uniform([], scale, 1.0 - settings.zoom, 1.0)
    crop_size = tf.cast(tf.round(tf.cast(size, tf.float32) * keep), tf.int32)
    image = tf.image.stateless_random_crop(image, tf.concat([crop_size, [3]], 0), crop)
    image = tf.image.resize(tf.cast(image, tf.float32) / 255.0, size, antialias=True)
    rotate, erase = tf.unstack(tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, 6), 2))  # apart: the draws above stay as they were
    if settings.rotation > 0:
        image = _rotate(image, tf.random.stateless_uniform([], rotate, -1.0, 1.0) * settings.rotation)
    jitter = settings.jitter
    if jitter > 0:  # (TensorFlow refuses an empty contrast or saturation range)
        image = tf.image.stateless_random_brightness(image, jitter, bright)
        image = tf.image.stateless_random_contrast(image, 1 - jitter, 1 + jitter, contrast)
        image = tf.image.stateless_random_saturation(image, 1 - jitter, 1 + jitter, saturation)
    image = tf.clip_by_value(image, 0.0, 1.0)
    if settings.erasing > 0:
        image = _erase(image, erase, settings.erasing)
    return image * 255.0


def _rotate(image: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """``image`` (H, W, C float) turned by ``degrees`` about its centre, the corners filled by reflection."""
    angle = degrees * (np.pi / 180.0)
    height, width = (tf.cast(s, tf.float32) - 1.0 for s in tf.unstack(tf.shape(image)[:2]))
    cos, sin = tf.cos(angle), tf.sin(angle)
    dx = (width - (cos * width - sin * height)) / 2.0
    dy = (height - (sin * width + cos * height)) / 2.0
    transform = tf.reshape(tf.stack([cos, -sin, dx, sin, cos, dy, 0.0, 0.0]), [1, 8])
    turned = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None], transforms=transform, output_shape=tf.shape(image)[:2], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="REFLECT")
    return turned[0]


def _erase(image: tf.Tensor, seed: tf.Tensor, chance: float) -> tf.Tensor:
    """With probability ``chance``, a rectangle of 2-25 % of ``image`` (values in [0, 1]), its sides' ratio
    between 0.3 and 3.3, replaced by grey noise (random erasing, Zhong et al. 2020)."""
    draw, area_seed, ratio_seed, top_seed, left_seed, noise_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 6))
    shape = tf.shape(image)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    area = tf.random.stateless_uniform([], area_seed, 0.02, 0.25) * height * width
    ratio = tf.exp(tf.random.stateless_uniform([], ratio_seed, np.log(0.3), np.log(3.3)))
    h = tf.cast(tf.clip_by_value(tf.round(tf.sqrt(area * ratio)), 1.0, height), tf.int32)
    w = tf.cast(tf.clip_by_value(tf.round(tf.sqrt(area / ratio)), 1.0, width), tf.int32)
    top = tf.random.stateless_uniform([], top_seed, 0, shape[0] - h + 1, tf.int32)
    left = tf.random.stateless_uniform([], left_seed, 0, shape[1] - w + 1, tf.int32)
    rows, cols = tf.range(shape[0])[:, None, None], tf.range(shape[1])[None, :, None]
    inside = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    inside &= tf.random.stateless_uniform([], draw) < chance
    noise = tf.random.stateless_uniform(tf.concat([shape[:2], [1]], 0), noise_seed)
    return tf.where(inside, noise, image)


def training_order(count: int, seed: int) -> np.ndarray:
    """The order a cached training pipeline stores its images in (and training shards are
    written in): mixed once, from ``seed``. In the given order, a set sorted by class (a folder
    per class) larger than the shuffle buffer gives one-class batches, and the model collapses."""
    return np.random.default_rng(seed).permutation(count)


def make_dataset(images: ImageSet, image_size: Sequence[int] = (128, 128), batch_size: int = 32,
                 training: bool = False, augment_images: bool | Augmentation | None = None,
                 cache: bool | str = False, shuffle_buffer: int = 2048, seed: int = 0,
                 weights: np.ndarray | None = None, ratings: np.ndarray | None = None) -> tf.data.Dataset:
    """Batches of ``(float32 images (B, H, W, 3) in [0, 255], int32 class ids)`` from image files; with
    ``ratings`` (``(N, k)`` per image: a model's second output's targets), the second element is
    ``(class ids, ratings)``.

    ``training`` shuffles (reproducibly from ``seed``, anew each epoch) and, unless
    ``augment_images`` is False, augments (as an :class:`Augmentation` given there says).
    ``cache`` keeps decoded, resized images in memory (``True``) or in files with that path prefix
    (a string). ``weights`` (one per image) come as a third element, Keras's sample weights.
    """
    if len(images) == 0:
        raise ValueError("cannot build a pipeline over an empty image set")
    if training and cache:
        order = training_order(len(images), seed)
        images = images.subset(order)
        weights = None if weights is None else np.asarray(weights)[order]
        ratings = None if ratings is None else np.asarray(ratings)[order]
    labels = images.label_ids.to_numpy()
    labels = labels if ratings is None else (labels, np.asarray(ratings, np.float32))
    files = tf.data.Dataset.from_tensor_slices((images.frame["path"].to_numpy(dtype=str),
                                                with_weights(labels, weights)))
    if training and not cache:  # shuffling paths is cheap: shuffle them all
        files = files.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    encoded = files.map(lambda path, label: (tf.io.read_file(path), label), num_parallel_calls=AUTOTUNE)
    ds = batches(encoded, image_size, batch_size, training, augment_images, cache,
                 min(shuffle_buffer, len(images)) if cache else 0, seed)
    return ds if weights is None else unpack_weights(ds)


def with_weights(labels: np.ndarray, weights: np.ndarray | None) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """The label element of a pipeline: class ids, or ``(class ids, float32 weights)`` that travel
    with each image through shuffling and augmentation until :func:`unpack_weights`."""
    return labels if weights is None else (labels, np.asarray(weights, np.float32))


def unpack_weights(batches: tf.data.Dataset) -> tf.data.Dataset:
    """``(x, (labels, weights))`` batches as Keras's ``(x, labels, sample weights)``."""
    return batches.map(lambda x, target: (x, *target))


def batches(encoded: tf.data.Dataset, image_size: Sequence[int], batch_size: int, training: bool,
            augment_images: bool | Augmentation | None, cache: bool | str, shuffle_buffer: int,
            seed: int) -> tf.data.Dataset:
    """The shared tail of every pipeline: ``(encoded bytes, label)`` -> decode and resize -> (cache)
    -> (shuffle ``shuffle_buffer`` decoded images) -> augment -> batch -> prefetch. ``augment_images``:
    an :class:`Augmentation`, True for the default one, False for none, None to augment when training."""
    size = [int(s) for s in image_size]
    augment_images = training if augment_images is None else augment_images
    settings = augment_images if isinstance(augment_images, Augmentation) else Augmentation()
    ds = encoded.map(lambda data, label: (decode_and_resize(data, size), label), num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache("" if cache is True else str(cache))
    if training and shuffle_buffer > 1:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if augment_images:
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda pair, s: (augment(pair[0], s, settings), pair[1]), num_parallel_calls=AUTOTUNE)
    else:
        ds = ds.map(lambda image, label: (tf.cast(image, tf.float32), label), num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size).prefetch(AUTOTUNE)


def check_batch_size(size: int) -> int:
    """``size`` if it can be a batch size, else a ValueError that says why."""
    if size < 1:
        raise ValueError(f"batch_size must be at least 1, got {size}")
    return size


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """``items`` in consecutive slices of ``size`` (the last may be shorter): a batch at a time, for the
    code that scores lists of files outside ``tf.data`` (predict, video, explain)."""
    for start in range(0, len(items), check_batch_size(size)):
        yield items[start:start + size]
