"""Face subcommands: ``detect``, ``align``, ``embed`` and ``verify``.

``embed`` and ``verify`` take raw photos by default: each is detected (MTCNN),
the largest face aligned to the model's input size and embedded.  With
``--aligned`` the files are taken as aligned face crops and embedded as they
are (resized with a warning if they are not the model's input size).  A photo
of exactly the model's input size in which no face is detected is taken as an
aligned crop, with a warning, so aligned crops work either way.
"""
import json
import warnings
from pathlib import Path

import numpy as np

from tinyface.cli.options import apply_threads, embedding_options, json_option, model_source
from tinyface.errors import NoFaceError, TinyfaceError
from tinyface.face.detection import MAX_SIDE
from tinyface.hxw import parse_hxw
from tinyface.verify import DEFAULT_THRESHOLD, calibration_note, cosine_similarity, threshold_for

EXIT_DIFFERENT = 1

LANDMARK_NAMES = ("left eye", "right eye", "nose", "left mouth", "right mouth")

RAW_PHOTOS_HELP = (
    "Inputs are photos: in each, faces are detected (MTCNN), the largest is aligned to the "
    "model's input size and embedded; if several faces are found the largest is used and a "
    "note goes to stderr, and a photo with no face is an error (exit 3). An image of exactly "
    "the model's input size (e.g. a 112x112 aligned crop) is also run through detection; "
    "if no face is found in it, it is taken as an already-aligned face, with a warning. "
    "--aligned skips detection: inputs are aligned crops, embedded as they are.")


def load_model(args, faces=None):
    """The command's model, its thread count set; on a first run (a JIT cache without the
    kernels the command needs) they are first compiled side by side in worker processes
    (``tools.warmup.first_run``; photos need the detector's too, unless --aligned; ``faces``:
    how many the command embeds at once, when it knows)."""
    import tinyface
    from tinyface.tools.warmup import first_run
    apply_threads(args)
    model = tinyface.load(model_source(args))
    first_run(model, detector=not getattr(args, "aligned", True), faces=faces)
    return model


def detector_options(args) -> dict:
    return {"min_face_size": args.min_face_size, "max_side": args.max_side or None}


def read_photo(path):
    from tinyface.face.image import load_rgb
    return load_rgb(path)


def no_face_hint(exc: NoFaceError, aligned_option=True) -> NoFaceError:
    hint = "; if it is an aligned face crop, pass --aligned" if aligned_option else ""
    return NoFaceError(f"{exc}{hint}")


# ------------------------------------------------------------------ detect

def face_record(face) -> dict:
    return {"box": [round(float(v), 2) for v in face.box],
            "score": round(float(face.score), 6),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in face.landmarks]}


def cmd_detect(args):
    from tinyface.face.detection import draw_faces
    from tinyface.face.image import save_rgb
    from tinyface.face.pipeline import detect
    image = read_photo(args.photo)
    faces = detect(image, **detector_options(args))
    h, w = image.shape[:2]
    if args.json:
        print(json.dumps({"photo": args.photo, "width": w, "height": h,
                          "faces": [face_record(f) for f in faces]}))
    else:
        print(f"{args.photo}: {w}x{h}, {len(faces)} face{'' if len(faces) == 1 else 's'}")
        for i, face in enumerate(faces, 1):
            x1, y1, x2, y2 = face.box
            print(f"face {i}: box ({x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}) "
                  f"{x2 - x1 + 1:.0f}x{y2 - y1 + 1:.0f} px, score {face.score:.4f}")
            print("  landmarks: " + ", ".join(f"{n} ({x:.1f}, {y:.1f})"
                                              for n, (x, y) in zip(LANDMARK_NAMES, face.landmarks)))
    if args.draw:
        save_rgb(np.asarray(draw_faces(image, faces)), args.draw)
    if not faces:
        raise NoFaceError(f"no face found in '{args.photo}' ({w}x{h} pixels)")
    return 0


# ------------------------------------------------------------------ align

def parse_size(text):
    size = parse_hxw(text)
    if not size or 0 in size:
        raise ValueError(text)
    return size


parse_size.__name__ = "size (HxW, e.g. 112x112)"     # argparse names the type in its error


def indexed_path(path: str, index: int) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}_{index}{p.suffix}"))


def cmd_align(args):
    from tinyface.face.alignment import template_for
    from tinyface.face.image import save_rgb
    from tinyface.face.pipeline import align, detect
    template_for(args.size)                   # an unknown size fails before detection
    image = read_photo(args.photo)
    faces = detect(image, **detector_options(args))
    h, w = image.shape[:2]
    if not faces:
        raise NoFaceError(f"no face found in '{args.photo}' ({w}x{h} pixels)")
    if len(faces) > 1 and not args.all:
        warnings.warn(f"{args.photo}: {len(faces)} faces found; aligning the largest "
                      f"(--all writes every face)")
    chosen = faces if args.all else faces[:1]
    for i, face in enumerate(chosen, 1):
        out = indexed_path(args.out, i) if args.all else args.out
        save_rgb(align(image, face, args.size), out)
        print(f"{out}: face {i} of {len(faces)}, score {face.score:.4f}, "
              f"{args.size[0]}x{args.size[1]} (HxW)")
    return 0


# ------------------------------------------------------------------ embed, verify

def embed_inputs(args, paths, model=None):
    """N x D embeddings of ``paths``: photos (detect + align) unless --aligned."""
    model = load_model(args, faces=len(paths)) if model is None else model
    if args.aligned:
        return model.embed(paths, flip=args.flip), [None] * len(paths)
    from tinyface.face.pipeline import FacePipeline
    pipeline = FacePipeline(model, **detector_options(args))
    crops, faces = [], []
    for path in paths:
        try:
            aligned = pipeline.aligned_faces(path, aligned_fallback=True)[0]
        except NoFaceError as exc:
            raise no_face_hint(exc) from None
        crops.append(aligned.crop)
        faces.append(aligned.face)
    return model.embed(crops, flip=args.flip), faces


def cmd_embed(args):
    if args.format == "npy" and not args.out:
        raise TinyfaceError("--format npy needs --out FILE")
    emb, faces = embed_inputs(args, args.faces)
    if args.format == "npy":
        try:
            np.save(args.out, emb)
        except OSError as exc:
            raise TinyfaceError(f"cannot write '{args.out}': {exc.strerror or exc}") from None
        return 0
    records = []
    for path, face, e in zip(args.faces, faces, emb):
        record = {"face": str(path)}
        if not args.aligned:
            record["box"] = None if face is None else face_record(face)["box"]
            record["score"] = None if face is None else face_record(face)["score"]
        record["embedding"] = [round(float(v), 7) for v in e]
        records.append(record)
    text = json.dumps(records)
    if args.out:
        try:
            Path(args.out).write_text(text + "\n")
        except OSError as exc:
            raise TinyfaceError(f"cannot write '{args.out}': {exc.strerror or exc}") from None
    else:
        print(text)
    return 0


def cmd_verify(args):
    model = load_model(args, faces=2)
    emb, _ = embed_inputs(args, [args.a, args.b], model)
    sim = cosine_similarity(emb[0], emb[1])
    if args.threshold is not None:
        threshold, how = args.threshold, f"threshold {args.threshold:g}"
    else:
        threshold, calibration = threshold_for(model)
        how = (f"threshold {threshold:.4f}, {calibration_note(calibration, args.flip, args.aligned)}"
               if model.info.threshold is not None
               else f"threshold {threshold:g}, not calibrated for this model")
    same = sim >= threshold
    print(f"cosine similarity {sim:.4f} -> {'same person' if same else 'different people'} ({how})")
    return 0 if same else EXIT_DIFFERENT


# ------------------------------------------------------------------ parser

def photo_options(sp, aligned=True):
    sp.add_argument("--min-face-size", type=float, default=20, metavar="PX",
                    help="smallest face to look for, in pixels, >= 12 (default 20); in a photo "
                         "larger than --max-side, in pixels of the shrunk copy")
    sp.add_argument("--max-side", type=int, default=MAX_SIDE, metavar="PX",
                    help=f"search photos larger than this on a copy shrunk to this longer side, "
                         f"then map the faces back (default {MAX_SIDE}; 0: full resolution)")
    if aligned:
        sp.add_argument("--aligned", action="store_true",
                        help="inputs are aligned face crops: skip detection and alignment")


def register(sub):
    d = sub.add_parser("detect", help="find the faces in a photo: boxes, scores, landmarks",
                       description="List the faces MTCNN finds in PHOTO, largest first: box "
                       "(x1, y1, x2, y2; pixel centres, inclusive), score and five landmarks "
                       "(x, y). Exit 3 if there is none.")
    d.add_argument("photo")
    json_option(d)
    d.add_argument("--draw", metavar="OUT.png", help="write the photo with boxes, scores and landmarks")
    photo_options(d, aligned=False)
    d.set_defaults(run=cmd_detect)

    a = sub.add_parser("align", help="write the aligned crop of the largest face in a photo",
                       description="Detect the faces in PHOTO and write the aligned crop of the "
                       "largest to OUT (a note on stderr if there are several). With --all, "
                       "every face is written to OUT with a suffix _1, _2, ... (largest first). "
                       "Exit 3 if there is no face.")
    a.add_argument("photo")
    a.add_argument("out")
    a.add_argument("--size", type=parse_size, default=(112, 112), metavar="HxW",
                   help="crop height x width: 112x112 (ArcFace, default), 112x96, 96x96 "
                        "or any square size")
    a.add_argument("--all", action="store_true", help="write every face, not just the largest")
    photo_options(a, aligned=False)
    a.set_defaults(run=cmd_align)

    e = sub.add_parser("embed", help="print the embeddings of the faces in photos",
                       description="Print one embedding per input. " + RAW_PHOTOS_HELP)
    e.add_argument("faces", nargs="+", metavar="photo", help="photos (or aligned crops with --aligned)")
    e.add_argument("--format", choices=["json", "npy"], default="json")
    e.add_argument("--out", help="write to this file instead of stdout")
    photo_options(e)
    embedding_options(e)
    e.set_defaults(run=cmd_embed)

    v = sub.add_parser("verify", help="are two photos the same person? (exit 0 yes, 1 no)",
                       description="Compare the faces in photos A and B by the cosine similarity "
                       "of their embeddings: exit 0 same person, 1 different people, 3 no "
                       "face. " + RAW_PHOTOS_HELP)
    v.add_argument("a", metavar="A")
    v.add_argument("b", metavar="B")
    v.add_argument("--threshold", type=float,
                   help="cosine similarity at or above which faces match (default: the model's "
                        f"calibrated threshold, else {DEFAULT_THRESHOLD})")
    photo_options(v)
    embedding_options(v)
    v.set_defaults(run=cmd_verify)
