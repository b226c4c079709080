"""``video``: sentiment over time in a video."""
from __future__ import annotations

import argparse
from pathlib import Path

from .shared import COUNT, FACES_ONLY, NON_NEGATIVE, add_command, add_faces, add_trust, bounded, count, scoped


def cmd_video(args: argparse.Namespace) -> int:
    """Sentiment over time in a video: per-frame table, timeline plot, summary, optional heat-map overlay."""
    from ..faces.scorer import face_scorer
    from ..inference.loader import load
    from ..video.score import check_outputs, score_video

    scoped(args, {"with --faces": (args.faces, FACES_ONLY)})
    out = Path(args.out or Path("runs") / "video" / Path(args.file).stem)
    check_outputs(args.file, out, args.overlay, args.overwrite)  # before the model loads
    predictor = load(args.model, verify=not args.trust_unverified)
    faces = (face_scorer(predictor, load(args.faces_model, verify=not args.trust_unverified),
                         min_score=args.min_face_score) if args.faces else None)
    result = score_video(args.file, predictor, out, args.every, args.per_second, args.batch_size,
                         args.smooth, args.overlay, overwrite=args.overwrite, faces=faces)
    smoothed = "smoothed_share_of_time" in result.summary
    shares = ", ".join(f"{c} {v:.0%}" for c, v in
                       result.summary["smoothed_share_of_time" if smoothed else "share_of_time"].items())
    faced = (f"; the largest face in {count(result.summary['samples_with_a_face'], 'frame')}: "
             + ", ".join(f"{c} {v:.0%}" for c, v in result.summary["face_share_of_time"].items())
             + f"; {count(len(result.summary['tracks']), 'face track')}") if args.faces else ""
    print(f"{count(result.summary['samples'], 'frame')} scored ({shares}"
          f"{f', smoothed over {args.smooth} samples' if smoothed else ''}{faced}); written to {out}"
          + (f", heat-map copy to {args.overlay}" if args.overlay else ""))
    return 0


def add_video(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "video", cmd_video, "nothing was written, no half-written heat-map copy either; run the "
                    "same command again")
    p.add_argument("file", help="a video file (anything OpenCV reads: mp4, avi, mov, mkv, ...)")
    p.add_argument("--model", help="a run directory, .keras, SavedModel version folder or .tflite "
                   "(default: the shipped model)")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--every", type=COUNT, help="score every N-th frame (default: every frame)")
    sampling.add_argument("--per-second", type=bounded(float, 0, above=True), help="score N frames per second of video")
    p.add_argument("--smooth", type=NON_NEGATIVE, default=0, metavar="N",
                   help="moving average over N samples (raw kept)")
    p.add_argument("--overlay", metavar="OUT.mp4", help="write a copy with heat maps and labels drawn in")
    add_faces(p, "how many in each frame, and the largest one's box and answers, as face_ columns; "
              "each face's row, with its track, in faces.csv")
    add_trust(p)
    p.add_argument("--batch-size", type=COUNT, default=32, help="frames per batch")
    p.add_argument("--out", help="output folder (default: runs/video/<name>)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run's results in --out and "
                   "an existing --overlay file")
