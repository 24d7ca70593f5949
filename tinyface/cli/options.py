"""The options several commands share, each defined once, and what acts on them.

``model_options`` adds ``--model`` and ``--threads`` (every command that runs
a model), ``json_option`` ``--json``, ``input_size_option`` ``--input-size``
for models whose input size is not fixed; ``apply_threads`` sets the kernels'
thread count from ``--threads``.
"""
MODEL_HELP = "ONNX model (default: the bundled MobileFaceNet)"
THREADS_HELP = "number of threads (default: all cores)"


def model_options(sp, model_help=MODEL_HELP, threads_help=THREADS_HELP):
    """``--model PATH`` and ``--threads N``."""
    sp.add_argument("--model", help=model_help)
    sp.add_argument("--threads", type=int, help=threads_help)


def apply_threads(args):
    """Run every kernel on ``--threads`` threads from now on, when the option was given."""
    if getattr(args, "threads", None) is not None:
        from tinyface.runtime.threads import set_num_threads
        set_num_threads(args.threads)


def json_option(sp, help="machine-readable output"):
    sp.add_argument("--json", action="store_true", help=help)


def input_size_option(sp):
    sp.add_argument("--input-size", metavar="HxW", help="for models whose input size is not fixed")
