"""Evaluation subcommands: ``eval pairs``, ``eval identify`` and ``calibrate``.

``eval pairs`` runs the verification protocol on a pair list (LFW's files or a
CSV) and prints k-fold accuracy, ROC AUC, EER and TAR at FAR; ``eval identify``
scores probes against a gallery (rank-1, rank-5, CMC, and rank-1 as
distractors are added, MegaFace's question); ``calibrate``
chooses a threshold on a pair list and writes it into the model's metadata
sidecar, where ``verify`` finds it.  Both embed each image once (photos are
detected and aligned unless ``--aligned``), with progress on stderr and an
optional ``--cache F.npz`` that a later or interrupted run reuses.
"""
import json

import numpy as np

from tinyface.cli.face_commands import detector_options, load_model, photo_options
from tinyface.cli.options import apply_threads, embedding_options, json_option, model_source
from tinyface.errors import TinyfaceError
from tinyface.evaluation import calibrate, verification
from tinyface.evaluation.pairs import FORMATS, read_pairs
from tinyface.verify import calibration_note, threshold_for


def scored_pairs(args, check=None):
    """(model, pair list, scores, embeddings) for the pair options of either command.

    ``check(pair_list)`` runs before anything is embedded, to fail early on bad options.
    """
    pair_list = read_pairs(args.pairs, args.root, args.format)
    if check is not None:
        check(pair_list)
    model = load_model(args)
    pipeline = None
    if not args.aligned:
        from tinyface.face.pipeline import FacePipeline
        pipeline = FacePipeline(model, **detector_options(args))
    scores, found = verification.score_pairs(model, pair_list, aligned=args.aligned,
                                             flip=args.flip, cache=args.cache, pipeline=pipeline)
    return model, pair_list, scores, found


def cmd_eval_pairs(args):
    model, pair_list, scores, found = scored_pairs(
        args, check=lambda pairs: verification.fold_ids(pairs, args.folds))
    threshold, calibration = threshold_for(model)
    about = (f"calibrated: {calibration_note(calibration, args.flip, args.aligned)}"
             if model.info.threshold is not None else "not calibrated, the default")
    report = verification.evaluate(pair_list, scores, found.failed, args.folds, (threshold, about),
                                   found.notes)
    if args.plot:
        from tinyface.evaluation.plot import plot_pairs
        lines = {"best on these pairs": report["best_threshold"]["threshold"], "model's threshold": threshold}
        plot_pairs(scores, [p.same for p in pair_list.pairs], report, args.plot, lines)
    if args.json:
        report["skipped_images"] = [{"image": p, "reason": r} for p, r in found.failed.items()]
        print(json.dumps(report))
    else:
        print(verification.format_report(report))
    return 0


def gallery_items(args):
    """(model, gallery embeddings G x D, their identities) of the gallery named by ``args``."""
    from tinyface.gallery.store import Gallery
    apply_threads(args)
    with Gallery(args.gallery, model_source(args), create=False) as gallery:
        gallery.check_model()
        faces = gallery.faces()
        if not faces:
            raise TinyfaceError(f"{args.gallery}: the gallery holds no faces")
        vectors, _ = gallery.vectors()
        embeddings = np.array(vectors[[face.id for face in faces]])
        return gallery.model, embeddings, [face.identity for face in faces]


def cmd_eval_identify(args):
    from tinyface.evaluation import identify
    from tinyface.evaluation.embed import embed_images
    from tinyface.gallery.index import identity_source, image_files
    model, gallery, gallery_labels = gallery_items(args)
    identity_of = identity_source(args.identity_from)
    pipeline = None
    if not args.aligned:
        from tinyface.face.pipeline import FacePipeline
        pipeline = FacePipeline(model, **detector_options(args))
    probe_paths = list(image_files(args.probes))
    done = embed_images(model, probe_paths, aligned=args.aligned, flip=args.flip, pipeline=pipeline,
                        cache=args.cache, label="probes")
    known = set(gallery_labels)
    skipped = {"no face or unreadable": len(done.failed), "no identity": 0, "identity not in the gallery": 0}
    probes, labels = [], []
    for path in probe_paths:
        label = identity_of(path)
        if path not in done.vectors:
            continue
        if label is None:
            skipped["no identity"] += 1
        elif label not in known:
            skipped["identity not in the gallery"] += 1
        else:
            probes.append(done.vectors[path])
            labels.append(label)
    if not probes:
        raise TinyfaceError(f"no probe has both an embedding and an identity in the gallery ({skipped})")
    distractors = None
    if args.distractors:
        found = embed_images(model, list(image_files(args.distractors)), aligned=args.aligned,
                             flip=args.flip, pipeline=pipeline, cache=args.cache, label="distractors")
        if not found.vectors:
            raise TinyfaceError("no distractor could be embedded")
        distractors = np.stack(list(found.vectors.values()))
        skipped["distractors not embedded"] = len(found.failed)
    report = identify.identification_report(np.stack(probes), labels, gallery, gallery_labels, distractors)
    report["skipped"] = skipped
    if args.plot:
        from tinyface.evaluation.plot import plot_identification
        plot_identification(report, args.plot)
    if args.json:
        print(json.dumps(report))
    else:
        print(identify.format_identification(report))
        print("skipped probes: " + ", ".join(f"{n} {why}" for why, n in skipped.items()))
    return 0


def cmd_calibrate(args):
    def check(pairs):               # before embedding: the pairs must be able to show the FAR
        if args.far is not None:
            calibrate.check_far(args.far, sum(not p.same for p in pairs.pairs))

    model, pair_list, scores, found = scored_pairs(args, check)
    same = np.array([p.same for p in pair_list.pairs])
    scored = verification.require_scores(pair_list, scores, found.failed)
    point = calibrate.choose_threshold(scores[scored], same[scored], args.far)
    record = calibrate.calibration_record(point, pair_list, scores, far=args.far,
                                          aligned=args.aligned, flip=args.flip)
    goal = "best accuracy" if args.far is None else f"FAR <= {args.far:g}"
    print(f"threshold {point.threshold:.4f} for {goal} on {pair_list.description}: "
          f"FAR {100 * point.far:.2f}%, TAR {100 * point.tar:.2f}%, accuracy "
          f"{100 * point.accuracy:.2f}% ({record['scored']} pairs scored, {record['skipped']} skipped)")
    if args.dry_run:
        return 0
    path = calibrate.write_threshold(model, point.threshold, record)
    print(f"written to {path}")
    return 0


def pair_options(sp):
    sp.add_argument("pairs", metavar="PAIRS", help="pair list: LFW's pairs file or a CSV path_a,path_b,same")
    sp.add_argument("--root", metavar="DIR",
                    help="folder the pairs' images are in (LFW: <DIR>/<name>/<name>_0001.jpg; "
                         "default: the pair file's folder)")
    sp.add_argument("--format", choices=FORMATS,
                    help="pair file format (default: csv for a .csv file, else lfw)")
    sp.add_argument("--cache", metavar="F.npz",
                    help="keep the embeddings in this file and reuse them (same model and options)")
    photo_options(sp)
    embedding_options(sp)


def register(sub):
    e = sub.add_parser("eval", help="evaluate a model: verification on labelled pairs, identification against a gallery",
                       description="Evaluation protocols.")
    protocols = e.add_subparsers(dest="protocol", required=True)
    p = protocols.add_parser(
        "pairs", help="k-fold accuracy, ROC AUC, EER and TAR at FAR on a list of pairs",
        description="Verification on labelled pairs. Accuracy is cross-validated: each fold "
        "is scored at the threshold that is best on the other folds (for LFW View 2's "
        "pairs.txt the folds are its 10 sets), and given again with skipped pairs (no face, "
        "unreadable) counted as errors. TAR at FAR is reported only where the number of "
        "different-person pairs can show that FAR.")
    pair_options(p)
    p.add_argument("--folds", type=int, metavar="K",
                   help=f"folds for cross-validation (default {verification.DEFAULT_FOLDS}, or one per "
                        "pair if there are fewer; LFW files with several sets use them)")
    json_option(p, "machine-readable report")
    p.add_argument("--plot", metavar="OUT.png",
                   help="write the ROC curve and similarity histograms (needs matplotlib: "
                        "pip install 'tinyface[plot]')")
    p.set_defaults(run=cmd_eval_pairs)

    i = protocols.add_parser(
        "identify", help="rank-1/rank-5 and the CMC curve of probes against a gallery",
        description="Closed-set identification of probe photos against a gallery made with "
        "`tinyface index`: an identity's score is its best gallery face; rank-1 and rank-5 "
        "rates and the CMC curve, and with --distractors rank-1 as the gallery grows with "
        "people who are none of the probes (10, 100, 1000, ... up to all given).")
    i.add_argument("--gallery", required=True, metavar="G", help="the gallery file")
    i.add_argument("--probes", required=True, nargs="+", metavar="PATH",
                   help="probe images or folders (recursive)")
    i.add_argument("--distractors", nargs="+", metavar="PATH", help="distractor images or folders")
    i.add_argument("--identity-from", default="folder", metavar="folder|csv:FILE",
                   help="the probes' identities: their folder's name (default) or a CSV path,identity")
    i.add_argument("--cache", metavar="F.npz",
                   help="keep the embeddings in this file and reuse them (same model and options)")
    photo_options(i)
    embedding_options(i)
    json_option(i, "machine-readable report")
    i.add_argument("--plot", metavar="OUT.png",
                   help="write the CMC curve and rank-1 against distractors (needs matplotlib)")
    i.set_defaults(run=cmd_eval_identify)

    c = sub.add_parser("calibrate", help="choose a model's threshold on pairs and store it with the model",
                       description="Choose the decision threshold on labelled pairs, for a "
                       "target false-accept rate or for the best accuracy, and write it with its "
                       "FAR/TAR, the pairs' description and the date into the model's metadata "
                       "file (<model>.json); verify then uses it.")
    pair_options(c)
    goal = c.add_mutually_exclusive_group(required=True)
    goal.add_argument("--far", type=float, metavar="RATE",
                      help="the highest TAR with a false-accept rate at most RATE (e.g. 1e-3)")
    goal.add_argument("--best-accuracy", action="store_true",
                      help="the threshold of best accuracy on the pairs")
    c.add_argument("--dry-run", action="store_true", help="print the threshold, write nothing")
    c.set_defaults(run=cmd_calibrate)
