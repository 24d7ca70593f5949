"""Model subcommands: ``inspect``, ``export`` and ``models``.

* ``inspect MODEL`` lists any ONNX model's fused steps, shapes, parameters and
  multiply-adds, as tinyface would run it.  A model with ops tinyface cannot
  run is still listed (every such op named) and exits with code 4, so
  scripts can ask "can tinyface run this?"; a file that is not a readable
  model exits with 2.
* ``export ARCH OUT.onnx`` writes one of the papers' architectures
  (:mod:`tinyface.models`) as an ONNX file, with seeded random weights or
  weights from an .npz.
* ``models`` lists every architecture at the papers' input sizes with its
  parameter and multiply-add counts.
"""
import json
import os
import tempfile
from dataclasses import asdict
from pathlib import Path

from tinyface.cli.options import json_option
from tinyface.errors import TinyfaceError
from tinyface.hxw import parse_hxw

from tinyface.models import ARCHITECTURES
from tinyface.models.netspec import ACTIVATIONS

ARCH_NAMES = tuple(ARCHITECTURES)
EXIT_UNSUPPORTED = 4


def cmd_inspect(args):
    from tinyface.graph.summary import format_summary, summarize
    from tinyface.runtime.binders_quantized import int8_form
    info = summarize(args.model_path, kernels=int8_form)
    print(json.dumps(info, indent=1) if args.json else format_summary(info))
    return EXIT_UNSUPPORTED if info["unsupported"] else 0


# ------------------------------------------------------------------ export

def parse_input_size(text: str) -> tuple[int, int]:
    """'112x112' -> (112, 112); anything else is a one-line TinyfaceError.

    Only the form is checked here; which sizes an architecture accepts
    (positive multiples of 16) is for tinyface.models to say.
    """
    size = parse_hxw(text)
    if not size:
        raise TinyfaceError(f"--input-size must be HEIGHTxWIDTH, e.g. 112x112 or 112x96, got {text!r}")
    return size


def _output_path(out: str) -> Path:
    path = Path(out)
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise TinyfaceError(f"cannot write '{out}': the folder '{folder}' {what}")
    if path.is_dir():
        raise TinyfaceError(f"cannot write '{out}': it is a folder; give a file name such as "
                            f"'{path / 'model.onnx'}'")
    return path


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder,
    so that a failed write never leaves a truncated model behind."""
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            fd = None
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise TinyfaceError(f"cannot write '{path}': {exc.strerror or exc}") from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n < 10_000_000 else f"{n / 1e6:.1f}M"


def cmd_export(args):
    from tinyface.models import build, count
    size = parse_input_size(args.input_size)
    path = _output_path(args.out)            # before the build: a bad path fails at once
    model = build(args.arch, size, seed=args.seed, weights=args.weights, activation=args.activation)
    meta = {p.key: p.value for p in model.metadata_props}
    c = count(model)
    _write_atomically(path, model.SerializeToString())
    print(f"{path}: {args.arch} {size[0]}x{size[1]} {args.activation}, "
          f"weights {meta['tinyface.weights']}; {c.params:,} params ({_millions(c.params)}), "
          f"{c.madds:,} MAdds ({_millions(c.madds)}), "
          f"{meta['tinyface.embedding_size']}-d embedding")
    return 0


# ------------------------------------------------------------------ models

def cmd_models(args):
    from tinyface.models import describe_architectures
    rows = describe_architectures(args.activation)
    if args.json:
        print(json.dumps([{**asdict(r), "input_size": list(r.input_size), "activation": args.activation}
                          for r in rows], indent=1))
        return 0
    print(f"{'architecture':17} {'input':8} {'D':>4} {'params':>19} {'MAdds':>20}")
    for r in rows:
        h, w = r.input_size
        print(f"{r.name:17} {f'{h}x{w}':8} {r.embedding_size:>4} "
              f"{r.params:>11,} {'(' + _millions(r.params) + ')':>7} "
              f"{r.madds:>12,} {'(' + _millions(r.madds) + ')':>7}")
    print(f"{args.activation} activations; params: BN folded into the conv before it (one shift per "
          f"channel) plus the PReLU slopes; MAdds: Conv + Gemm per image (docs/architectures.md)")
    return 0


# ------------------------------------------------------------------ parser

def register(sub):
    i = sub.add_parser("inspect", help="list a model's fused steps, shapes, params and multiply-adds",
                       description="List the model's fused steps, shapes, parameters and "
                       "multiply-adds as tinyface would run it. Exit codes: 0 tinyface can run it, "
                       "4 it has ops tinyface does not support (each one listed), 2 the file is "
                       "not a readable model.")
    i.add_argument("model_path")
    json_option(i)
    i.set_defaults(run=cmd_inspect)

    e = sub.add_parser("export", help="write one of the papers' architectures as an ONNX file",
                       description="Build ARCH (see 'tinyface models') as a standard ONNX graph "
                       "with input 'input' [N, 3, H, W] (RGB, (pixel - 127.5) / 128) and output "
                       "'embedding' [N, D], and write it to OUT. Weights are seeded random "
                       "weights (the same seed gives the same bytes) unless --weights is given. "
                       "Prints one line: the file, parameters, multiply-adds, embedding size.")
    e.add_argument("arch", choices=ARCH_NAMES, metavar="ARCH",
                   help="one of: " + ", ".join(ARCH_NAMES))
    e.add_argument("out", metavar="OUT.onnx")
    e.add_argument("--input-size", default="112x112", metavar="HxW",
                   help="input height x width, positive multiples of 16 (default 112x112; "
                        "the MobileFaceNet paper also uses 112x96 and 96x96)")
    source = e.add_mutually_exclusive_group()
    source.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    source.add_argument("--weights", metavar="W.npz",
                        help="weights from an .npz named as PyTorch's state_dict "
                             "(see docs/architectures.md)")
    e.add_argument("--activation", choices=ACTIVATIONS, default="prelu",
                   help="activation after each non-linear conv (default prelu, as in the papers)")
    e.set_defaults(run=cmd_export)

    m = sub.add_parser("models", help="list the architectures 'export' builds, with params and MAdds",
                       description="Every architecture at the papers' input sizes: embedding size "
                       "D, parameters and multiply-adds per image.")
    json_option(m)
    m.add_argument("--activation", choices=ACTIVATIONS, default="prelu")
    m.set_defaults(run=cmd_models)
