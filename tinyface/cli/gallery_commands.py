"""Gallery subcommands: ``index``, ``search`` and ``gallery info|list|remove``.

* ``index PATH... --gallery G`` adds the faces of photos (folders recursively)
  to the gallery G, identities from folder names or a CSV; running it again
  resumes (files already indexed are skipped).  Problems with single files are
  counted on stderr and listed by ``gallery list G --log``; they never stop
  the run.  ``--dask ADDRESS`` spreads the work over a Dask cluster.
* ``search PHOTO... --gallery G`` prints, per face, the most similar
  identities, or "unknown" below the threshold.  Exit 3 if a photo has no face.
* ``gallery info G`` sums a gallery up and runs its integrity check (exit 2 if
  it fails); ``gallery list G`` lists identities, faces or the log;
  ``gallery remove G`` removes faces by identity, path or id.
"""
import json
import os
import sys

from tinyface.cli.options import MODEL_HELP, apply_threads, int8_option, json_option, model_options, model_source
from tinyface.errors import NoFaceError, TinyfaceError

EXIT_ERROR = 2


def open_gallery(args, create=False):
    from tinyface.gallery.store import Gallery
    apply_threads(args)
    return Gallery(args.gallery, model_source(args), create=create)


# ------------------------------------------------------------------ index

def cmd_index(args):
    from tinyface.gallery.index import check_paths, identity_source
    check_paths(args.paths)                       # bad paths or a bad CSV fail before the
    identity_source(args.identity_from)           # gallery is created
    options = dict(identity_from=args.identity_from, aligned=args.aligned,
                   all_faces=args.all_faces, batch=args.batch, progress=not args.quiet)
    with open_gallery(args, create=True) as gallery:
        if args.dask:
            report = index_on_cluster(args.dask, args.paths, gallery, options)
        else:
            from tinyface.gallery.index import index
            from tinyface.tools.warmup import first_run
            first_run(gallery.model, detector=not args.aligned)
            report = index(gallery, args.paths, **options)
        print_index_report(report, args)
    return 0


def index_on_cluster(address, paths, gallery, options):
    try:
        from distributed import Client
    except ImportError:
        raise TinyfaceError("--dask needs dask.distributed: pip install 'tinyface[dask]'") from None
    from tinyface.gallery.distributed import index
    try:
        client = Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise TinyfaceError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        return index(client, paths, gallery, **options)


def print_index_report(report, args):
    problems = sum(report.problems.values())
    if not args.quiet:
        notes = [f"{n} {kind}" for kind, n in sorted(report.notes.items()) if n]
        print(f"tinyface: {plural(report.files, 'file')}: {plural(report.faces, 'face')} added, "
              f"{report.skipped} already indexed, {plural(problems, 'problem')}, "
              f"in {report.seconds:.1f} s"
              + (f" ({', '.join(notes)})" if notes else ""), file=sys.stderr)
    if problems:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(report.problems.items()))
        print(f"tinyface: {plural(problems, 'file')} with problems ({kinds}); see "
              f"`tinyface gallery list {args.gallery} --log`", file=sys.stderr)


def plural(n, word):
    return f"{n} {word}{'' if n == 1 else 's'}"


# ------------------------------------------------------------------ search

def match_record(m):
    return None if m is None else {"identity": m.identity, "similarity": round(m.similarity, 6),
                                   "face_id": m.face_id, "path": m.path}


def cmd_search(args):
    from tinyface.face.pipeline import FacePipeline
    if args.top_k < 1:
        raise TinyfaceError(f"--top-k must be at least 1, got {args.top_k}")
    missing, records = [], []
    from tinyface.tools.warmup import first_run
    with open_gallery(args) as gallery:
        first_run(gallery.model, detector=not args.aligned)
        pipeline = None if args.aligned else FacePipeline(gallery.model)
        for photo in args.photos:
            found = gallery.identify(photo, args.top_k, args.threshold, args.aligned, pipeline)
            if not found:
                missing.append(photo)
            if args.json:
                records.append({"photo": photo, "faces": [
                    {"box": None if r.face is None else [round(float(v), 2) for v in r.face.box],
                     "score": None if r.face is None else round(float(r.face.score), 6),
                     "known": r.known, "matches": [match_record(m) for m in r.matches],
                     "nearest": match_record(r.nearest)} for r in found]})
            else:
                print_identifications(photo, found)
    if args.json:
        print(json.dumps(records))
    if missing:
        raise NoFaceError(f"no face found in {', '.join(missing)}")
    return 0


def print_identifications(photo, found):
    if not found:
        print(f"{photo}: no face found")
    for i, r in enumerate(found, 1):
        where = photo
        if r.face is not None:
            box = ", ".join(f"{v:.0f}" for v in r.face.box)
            where = f"{photo}, face {i} of {len(found)} (box {box})"
        if r.known:
            print(f"{where}: " + ", ".join(f"{m.identity} {m.similarity:.3f}" for m in r.matches))
        elif r.nearest is None:
            print(f"{where}: unknown (the gallery is empty)")
        else:
            print(f"{where}: unknown (nearest: {r.nearest.identity} {r.nearest.similarity:.3f})")


# ------------------------------------------------------------------ gallery info, list, remove

def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def cmd_info(args):
    with open_gallery(args) as gallery:
        meta, counts, report = gallery.meta(), gallery.counts(), gallery.check()
        empty = gallery.db.execute("SELECT COUNT(*) FROM files WHERE faces = 0").fetchone()[0]
        size = sum(file_size(f"{gallery.path}{suffix}") for suffix in ("", "-wal", "-vectors", "-codes"))
    info = {"gallery": str(gallery.path), "bytes": size, "model": meta.get("model"),
            "fingerprint": meta.get("fingerprint"), "dim": int(meta["dim"]) if "dim" in meta else None,
            "input_size": meta.get("input_size"), "faces": counts.faces,
            "identities": counts.identities, "files": counts.files, "files_without_face": empty,
            "removed": counts.removed, "batches": counts.batches, "problems": counts.problems,
            "slots": counts.slots, "coded": min(int(meta.get("coded", 0)), counts.slots),
            "integrity": {"ok": report.ok, "failures": report.failures, "notes": report.notes}}
    if args.json:
        print(json.dumps(info))
    else:
        print(f"gallery: {info['gallery']} ({size / 1e6:.1f} MB with its vectors and codes files)")
        if info["fingerprint"]:
            print(f"model: {info['model']} (fingerprint {info['fingerprint'][:12]}, "
                  f"{info['dim']}-d, input {info['input_size']})")
        else:
            print("model: none yet (the gallery is empty)")
        print(f"faces: {counts.faces} of {counts.identities} identities, from {counts.files} files "
              f"({empty} without a face); {counts.removed} removed")
        print(f"batches: {counts.batches}; problems logged: {counts.problems}")
        print(f"vector rows: {counts.slots}, {info['coded']} of them with int8 codes")
        print("integrity: " + ("ok" if report.ok else "FAILED"))
        for line in report.failures:
            print(f"  failure: {line}")
        for line in report.notes:
            print(f"  note: {line}")
    return 0 if report.ok else EXIT_ERROR


def cmd_list(args):
    with open_gallery(args) as gallery:
        if args.log:
            rows = [p._asdict() for p in gallery.problems()]
            lines = [f"{r['path']}: {r['problem']}: {r['message']}" for r in rows]
        elif args.faces or args.identity:
            rows = [f._asdict() for f in gallery.faces(identity=args.identity)]
            lines = [f"{r['id']}\t{r['identity']}\t{r['path']}\tface {r['face_index']}"
                     + ("" if r["score"] is None else f"\tscore {r['score']:.3f}") for r in rows]
        else:
            rows = [{"identity": name, "faces": n} for name, n in gallery.identities()]
            lines = [f"{r['identity']}\t{plural(r['faces'], 'face')}" for r in rows]
    if args.json:
        print(json.dumps(rows))
    else:
        for line in lines:
            print(line)
    return 0


def cmd_remove(args):
    if not (args.identity or args.path or args.id):
        raise TinyfaceError("say what to remove: --identity NAME, --path PATH or --id N")
    with open_gallery(args) as gallery:
        n = gallery.remove(ids=args.id or (), identities=args.identity or (), paths=args.path or ())
    print(f"removed {plural(n, 'face')}")
    return 0


# ------------------------------------------------------------------ parser

def positive_int(text):
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive integer"


def register(sub):
    x = sub.add_parser("index", help="add the faces of photos to a gallery (resumable)",
                       description="Detect, align and embed the faces in PATH (files, or folders "
                       "searched recursively for images) and add them to the gallery G, created "
                       "if missing. Running the same command again resumes: files already in "
                       "the gallery (same SHA-256) are skipped. Unreadable files and photos "
                       "without a face are counted on stderr and listed by `tinyface gallery "
                       "list G --log`.")
    x.add_argument("paths", nargs="+", metavar="PATH")
    x.add_argument("--gallery", required=True, metavar="G", help="the gallery file")
    x.add_argument("--identity-from", default="folder", metavar="folder|csv:FILE",
                   help="identity of each file: its folder's name (default), or from a CSV "
                        "of 'path,identity' rows (paths relative to the CSV)")
    x.add_argument("--aligned", action="store_true",
                   help="the files are aligned face crops: skip detection")
    x.add_argument("--all-faces", action="store_true",
                   help="add every face of a photo (default: the largest)")
    x.add_argument("--batch", type=positive_int, default=64, metavar="N",
                   help="files per batch: embedded together, committed in one transaction (64)")
    x.add_argument("--quiet", action="store_true", help="no progress line and no summary")
    x.add_argument("--dask", metavar="tcp://HOST:PORT",
                   help="run on the Dask cluster with this scheduler (needs tinyface[dask])")
    model_options(x, MODEL_HELP + "; must be the gallery's own")
    int8_option(x)
    x.set_defaults(run=cmd_index)

    s = sub.add_parser("search", help="who is in a photo? (1:N search of a gallery)",
                       description="For each face in each PHOTO, print the most similar "
                       "identities of the gallery G with their cosine similarity (an identity "
                       "scores as its best face), or 'unknown' if none reaches the threshold. "
                       "Exit 3 if a photo has no face.")
    s.add_argument("photos", nargs="+", metavar="PHOTO")
    s.add_argument("--gallery", required=True, metavar="G")
    s.add_argument("--aligned", action="store_true", help="the photos are aligned face crops")
    s.add_argument("--top-k", type=int, default=5, metavar="K", help="identities per face (5)")
    s.add_argument("--threshold", type=float, metavar="T",
                   help="similarity at or above which an identity matches (default: the "
                        "model's threshold, 0.35 for the bundled model)")
    json_option(s)
    model_options(s, MODEL_HELP + "; must be the gallery's own")
    int8_option(s)
    s.set_defaults(run=cmd_search)

    g = sub.add_parser("gallery", help="upkeep of a gallery: info, list, remove",
                       description="Look after a gallery made by `tinyface index`.")
    gsub = g.add_subparsers(dest="gallery_command", required=True)
    i = gsub.add_parser("info", help="sizes, model, and the integrity check (exit 2 if it fails)")
    i.add_argument("gallery", metavar="G")
    json_option(i)
    i.set_defaults(run=cmd_info)
    ls = gsub.add_parser("list", help="identities (default), faces, or the log of problems")
    ls.add_argument("gallery", metavar="G")
    what = ls.add_mutually_exclusive_group()
    what.add_argument("--faces", action="store_true", help="one line per face")
    what.add_argument("--identity", metavar="NAME", help="the faces of one identity")
    what.add_argument("--log", action="store_true", help="files that could not be indexed")
    json_option(ls)
    ls.set_defaults(run=cmd_list)
    rm = gsub.add_parser("remove", help="remove faces by identity, path or id",
                         description="Remove faces from the gallery. Files left without a face "
                         "are forgotten, so indexing them again adds them back.")
    rm.add_argument("gallery", metavar="G")
    rm.add_argument("--identity", action="append", metavar="NAME", help="every face of NAME")
    rm.add_argument("--path", action="append", metavar="PATH",
                    help="the faces from this file, or from every file under this folder")
    rm.add_argument("--id", action="append", type=int, metavar="N", help="the face with this id")
    rm.set_defaults(run=cmd_remove)
