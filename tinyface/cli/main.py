"""``tinyface``: the command line.

Each group of subcommands lives in its own module and registers itself on the
parser: ``face_commands`` (embed, verify, detect, align),
``model_commands`` (inspect, export, models), ``eval_commands`` (eval,
calibrate), ``gallery_commands`` (index, search, gallery), ``tool_commands``
(compare, bench) and ``warmup_commands`` (warmup); the options several of them
share are defined once, in ``options``.

Exit codes: 0 success (``verify``: same person), 1 ``verify``: different
people, 2 an error (bad file, bad model, bad arguments), 3 no face found,
4 ``inspect``: the model has ops tinyface does not support.
"""
import argparse
import os
import sys
import warnings

from tinyface.cli import (eval_commands, face_commands, gallery_commands, model_commands, tool_commands,
                          warmup_commands)
from tinyface.errors import NoFaceError, TinyfaceError

EXIT_ERROR, EXIT_NO_FACE = 2, 3


def build_parser():
    p = argparse.ArgumentParser(prog="tinyface", description="Face embeddings on a small Numba engine.")
    sub = p.add_subparsers(dest="command", required=True)
    face_commands.register(sub)
    model_commands.register(sub)
    eval_commands.register(sub)
    gallery_commands.register(sub)
    tool_commands.register(sub)
    warmup_commands.register(sub)
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
        except BrokenPipeError:          # e.g. `tinyface models --json | head`: the reader left
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # no flush error at exit
            code = 0
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
