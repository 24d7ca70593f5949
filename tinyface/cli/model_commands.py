"""Model subcommands: ``inspect``."""
import json


def cmd_inspect(args):
    from tinyface.graph.summary import format_summary, summarize
    info = summarize(args.model_path)
    print(json.dumps(info, indent=1) if args.json else format_summary(info))
    return 0


def register(sub):
    i = sub.add_parser("inspect", help="list a model's fused steps, shapes, params and multiply-adds")
    i.add_argument("model_path")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(run=cmd_inspect)
