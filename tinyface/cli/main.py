"""``tinyface``: embed, verify and inspect from the shell.

Exit codes: 0 success (``verify``: same person), 1 ``verify``: different
people, 2 an error (bad file, bad model, bad arguments), 3 no face found.
"""
import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from tinyface.errors import NoFaceError, TinyfaceError

EXIT_DIFFERENT, EXIT_ERROR, EXIT_NO_FACE = 1, 2, 3


def _load(args):
    import tinyface
    if getattr(args, "threads", None):
        tinyface.set_num_threads(args.threads)
    return tinyface.load(args.model)


def cmd_embed(args):
    model = _load(args)
    emb = model.embed(args.faces, flip=args.flip)
    if args.format == "npy":
        if not args.out:
            raise TinyfaceError("--format npy needs --out FILE")
        np.save(args.out, emb)
        return 0
    text = json.dumps([{"face": str(f), "embedding": [round(float(v), 7) for v in e]}
                       for f, e in zip(args.faces, emb)])
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


def cmd_verify(args):
    from tinyface.verify import cosine_similarity
    model = _load(args)
    emb = model.embed([args.a, args.b], flip=args.flip)
    sim = cosine_similarity(emb[0], emb[1])
    same = sim >= args.threshold
    print(f"cosine similarity {sim:.4f} -> {'same person' if same else 'different people'} "
          f"(threshold {args.threshold})")
    return 0 if same else EXIT_DIFFERENT


def cmd_inspect(args):
    from tinyface.graph.summary import format_summary, summarize
    info = summarize(args.model_path)
    print(json.dumps(info, indent=1) if args.json else format_summary(info))
    return 0


def build_parser():
    from tinyface.verify import DEFAULT_THRESHOLD
    p = argparse.ArgumentParser(prog="tinyface", description="Face embeddings on a small Numba engine.")
    sub = p.add_subparsers(dest="command", required=True)

    def model_opts(sp):
        sp.add_argument("--model", help="ONNX model (default: the bundled MobileFaceNet)")
        sp.add_argument("--threads", type=int, help="number of threads (default: all cores)")
        sp.add_argument("--flip", action="store_true", help="average with the mirrored face's embedding")

    e = sub.add_parser("embed", help="print the embeddings of aligned faces")
    e.add_argument("faces", nargs="+", help="aligned face images")
    e.add_argument("--format", choices=["json", "npy"], default="json")
    e.add_argument("--out", help="write to this file instead of stdout")
    model_opts(e)
    e.set_defaults(run=cmd_embed)

    v = sub.add_parser("verify", help="are two aligned faces the same person? (exit 0 yes, 1 no)")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"cosine similarity at or above which faces match (default {DEFAULT_THRESHOLD})")
    model_opts(v)
    v.set_defaults(run=cmd_verify)

    i = sub.add_parser("inspect", help="list a model's fused steps, shapes, params and multiply-adds")
    i.add_argument("model_path")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(run=cmd_inspect)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            code = args.run(args)
        except NoFaceError as exc:
            print(f"tinyface: {exc}", file=sys.stderr)
            code = EXIT_NO_FACE
        except TinyfaceError as exc:
            print(f"tinyface: error: {exc}", file=sys.stderr)
            code = EXIT_ERROR
        except KeyboardInterrupt:
            code = 130
        except Exception as exc:   # a bug in tinyface: still one line, never a traceback
            print(f"tinyface: internal error ({type(exc).__name__}: {exc}); please report it",
                  file=sys.stderr)
            code = EXIT_ERROR
        finally:
            for w in caught:
                print(f"tinyface: warning: {w.message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
