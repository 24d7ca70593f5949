"""Face subcommands: ``embed`` and ``verify`` (aligned faces)."""
import json
from pathlib import Path

import numpy as np

from tinyface.errors import TinyfaceError
from tinyface.verify import DEFAULT_THRESHOLD, cosine_similarity

EXIT_DIFFERENT = 1


def load_model(args):
    import tinyface
    if getattr(args, "threads", None):
        tinyface.set_num_threads(args.threads)
    return tinyface.load(args.model)


def cmd_embed(args):
    model = load_model(args)
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
    model = load_model(args)
    emb = model.embed([args.a, args.b], flip=args.flip)
    sim = cosine_similarity(emb[0], emb[1])
    same = sim >= args.threshold
    print(f"cosine similarity {sim:.4f} -> {'same person' if same else 'different people'} "
          f"(threshold {args.threshold})")
    return 0 if same else EXIT_DIFFERENT


def model_options(sp):
    sp.add_argument("--model", help="ONNX model (default: the bundled MobileFaceNet)")
    sp.add_argument("--threads", type=int, help="number of threads (default: all cores)")
    sp.add_argument("--flip", action="store_true", help="average with the mirrored face's embedding")


def register(sub):
    e = sub.add_parser("embed", help="print the embeddings of aligned faces")
    e.add_argument("faces", nargs="+", help="aligned face images")
    e.add_argument("--format", choices=["json", "npy"], default="json")
    e.add_argument("--out", help="write to this file instead of stdout")
    model_options(e)
    e.set_defaults(run=cmd_embed)

    v = sub.add_parser("verify", help="are two faces the same person? (exit 0 yes, 1 no)")
    v.add_argument("a")
    v.add_argument("b")
    v.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                   help=f"cosine similarity at or above which faces match (default {DEFAULT_THRESHOLD})")
    model_options(v)
    v.set_defaults(run=cmd_verify)
