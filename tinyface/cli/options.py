"""The options several commands share, each defined once, and what acts on them.

``model_options`` adds ``--model`` and ``--threads`` (every command that runs
a model), ``int8_option`` ``--int8`` (the bundled model's 8-bit form),
``embedding_options`` both and ``--flip`` (commands that embed faces),
``json_option`` ``--json``, ``input_size_option`` ``--input-size`` for models
whose input size is not fixed; ``apply_threads`` sets the kernels' thread
count from ``--threads`` and ``model_source`` says which model file
``--model`` and ``--int8`` chose.
"""
from tinyface.errors import InputError

MODEL_HELP = "ONNX model (default: the bundled MobileFaceNet)"
THREADS_HELP = "number of threads (default: all cores)"


def model_options(sp, model_help=MODEL_HELP, threads_help=THREADS_HELP):
    """``--model PATH`` and ``--threads N``."""
    sp.add_argument("--model", help=model_help)
    sp.add_argument("--threads", type=int, help=threads_help)


def int8_option(sp):
    sp.add_argument("--int8", action="store_true",
                    help="the bundled MobileFaceNet's 8-bit form (its own threshold; docs/int8.md)")


def embedding_options(sp):
    """``--model``, ``--threads``, ``--int8`` and ``--flip``: what embedding faces takes."""
    model_options(sp)
    int8_option(sp)
    sp.add_argument("--flip", action="store_true", help="average with the mirrored face's embedding")


def model_source(args):
    """The model ``--model`` and ``--int8`` choose: ``--model``'s path, the bundled 8-bit
    model's with ``--int8``, None (the bundled fp32 model) with neither."""
    model = getattr(args, "model", None)
    if not getattr(args, "int8", False):
        return model
    if model:
        raise InputError("--int8 chooses the bundled 8-bit MobileFaceNet: give --model or --int8, not both "
                         "(a quantised model of your own runs with --model)")
    from tinyface.paths import default_model_path
    return str(default_model_path("int8"))


def apply_threads(args):
    """Run every kernel on ``--threads`` threads from now on, when the option was given."""
    if getattr(args, "threads", None) is not None:
        from tinyface.runtime.threads import set_num_threads
        set_num_threads(args.threads)


def json_option(sp, help="machine-readable output"):
    sp.add_argument("--json", action="store_true", help=help)


def input_size_option(sp):
    sp.add_argument("--input-size", metavar="HxW", help="for models whose input size is not fixed")
