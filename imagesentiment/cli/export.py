"""``export``: a trained model as a SavedModel version for serving, or as checked TFLite files."""
from __future__ import annotations

import argparse

from ..contract import MAX_BATCH, MAX_LAYER_ERROR, QUANTIZATIONS, WEIGHT_PRECISIONS
from .shared import COUNT, NON_NEGATIVE, add_command, add_trust, bounded, names, parse_options, scoped

INT8 = {"representative_images": 200, "max_layer_error": None, "all_integer": False}  # the options of int8
TFLITE = {"quantize": ["float32"], "data": None, "data_format": None, "option": [], "check_images": None, **INT8}
SAVEDMODEL = {"version": None, "weight_precision": WEIGHT_PRECISIONS[0], "max_batch": MAX_BATCH, "allow_unit_scale": False}


def _max_layer_error(args: argparse.Namespace) -> float | None:
    return None if args.all_integer else (MAX_LAYER_ERROR if args.max_layer_error is None else args.max_layer_error)


def cmd_export(args: argparse.Namespace) -> int:
    """Export a trained model: a SavedModel version for TF Serving (BASE/NAME/VERSION), or TFLite
    files (float32, float16, dynamic-range, int8), each checked with the LiteRT interpreter against the model."""
    from ..export import check_destination, export_savedmodel, export_tflite, image_arrays, input_size
    from ..export.tflite import check_files, check_sets
    from ..inference.loader import load_keras
    from ..models.views import with_views

    scoped(args, {"to --format tflite": (args.format == "tflite", TFLITE),
                  "to --format savedmodel": (args.format == "savedmodel", SAVEDMODEL),
                  "to --quantize int8": ("int8" in (args.quantize or []), INT8),
                  "with --data": (bool(args.data), {"data_format": None, "option": []})})
    check_destination(args.out, args.name)
    model, classes = load_keras(args.model, args.classes, not args.trust_unverified)
    model = with_views(model, args.flip_tta, args.crop_tta)
    if args.format == "savedmodel":
        folder = export_savedmodel(model, args.out, args.name, classes, args.version, args.overwrite,
                                   weight_precision=args.weight_precision, max_batch=args.max_batch,
                                   refuse_unit_scale=not args.allow_unit_scale)
        print(f"SavedModel written to {folder}")
        return 0
    check_files(args.out, args.name, args.quantize, classes, args.overwrite)  # before the images are read
    train, test = check_sets(args.model, classes, args.data, args.data_format, parse_options(args.option), args.seed)
    size = input_size(model)
    checks = image_arrays(test, size, classes, args.check_images, args.seed)
    representative = (image_arrays(train, size, classes, args.representative_images, args.seed)[0]
                      if "int8" in args.quantize else None)
    for quantization, (path, _) in export_tflite(model, args.out, args.quantize, checks, representative, classes,
                                                 args.name, _max_layer_error(args), args.overwrite).items():
        print(f"{quantization} model written to {path} ({path.stat().st_size / 1e6:.2f} MB)")
    return 0


def add_export(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "export", cmd_export)
    p.add_argument("model", help="a run directory (with model.keras), a .keras file, or an exported SavedModel "
                   "version folder (rebuilt from the Keras graph it carries: a shipped model exported again, as "
                   "TFLite say)")
    p.add_argument("--format", choices=["savedmodel", "tflite"], default="savedmodel", help="what to export")
    p.add_argument("--out", default="exported_models",
                   help="savedmodel: the base folder a server watches (BASE/NAME/VERSION); tflite: the output folder")
    p.add_argument("--name", default="imagesentiment", help="the model's name (serving) or file name prefix (tflite)")
    p.add_argument("--classes", type=names, help="class names in output order, comma-separated (default: the run's "
                   "classes.json, else negative,neutral,positive)")
    add_trust(p)
    p.add_argument("--flip-tta", action="store_true", help="put the mirrored image in the exported graph: "
                   "every signature answers with the mean of both views, in one call (twice the computation)")
    p.add_argument("--crop-tta", action="store_true", help="put the centre and four corner crops in the exported "
                   "graph, each resized back (with --flip-tta: 12 views, 12 times the computation); heat maps "
                   "stay those of the whole image")
    p.add_argument("--version", type=COUNT, help="savedmodel: the version number (default: the next one)")
    p.add_argument("--weight-precision", choices=WEIGHT_PRECISIONS,
                   help=f"savedmodel: how the weights are stored (default {WEIGHT_PRECISIONS[0]}); float16 takes half "
                   "the space on disk and in a server's memory, and computes in float32 with the weights rounded")
    p.add_argument("--max-batch", type=COUNT, help="savedmodel: the most images one request may hold (default "
                   f"{MAX_BATCH}); a larger request is refused before any image is decoded")
    p.add_argument("--allow-unit-scale", action="store_true", help="savedmodel: let predict_images and "
                   "explain_images answer images whose pixels all lie within (0, 1] (refused by default: the "
                   "model reads [0, 255], and a photo divided by 255 gets a confident wrong answer)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing version (savedmodel) or existing files (tflite)")
    p.add_argument("--quantize", nargs="+", choices=QUANTIZATIONS,
                   help=f"tflite: one file per choice (default: {' '.join(TFLITE['quantize'])})")
    p.add_argument("--data", help="tflite: a labelled data set, split as in training (--seed): calibration "
                   "images from its training side, checks on its test side (default: the run's split tables)")
    p.add_argument("--data-format", help="the data set's format (guessed when left out)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="KEY=VALUE", help="a source option")
    p.add_argument("--seed", type=NON_NEGATIVE, default=0, help="the split seed (the training run's)")
    p.add_argument("--check-images", type=COUNT, help="tflite: test images to check on (default: all)")
    p.add_argument("--representative-images", type=COUNT,
                   help=f"int8: calibration images (default {INT8['representative_images']})")
    layers = p.add_mutually_exclusive_group()
    layers.add_argument("--max-layer-error", type=bounded(float, 0),
                        help="int8: layers whose quantization error exceeds "
                        f"this many steps stay in float (default {MAX_LAYER_ERROR}; rounding alone gives 0.29)")
    layers.add_argument("--all-integer", action="store_true", help="int8: quantize every layer (for "
                        "integer-only accelerators), however large its error")
