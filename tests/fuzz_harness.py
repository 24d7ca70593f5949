"""The fuzz harness: malformed models and images by the thousand, in a watched worker.

    report = run_cases({"model_bytes": 600, "image_truncate": 1375}, seed=0)
    assert not report.failures, report.describe()

A *kind* of case (``KINDS``) turns a case number into an input -- a mutated
model or image (``fuzz_model_cases``, ``fuzz_image_cases``) -- and feeds it to
the entry points a user calls:

* models: ``tinyface.load`` (bytes or a path), ``model.run`` on a random input
  of the declared shape, ``model.embed`` on a random face when the model
  states an input size; then onnxruntime on the same model and input: when it
  runs the model too, the outputs must agree (tinyface may accept what
  onnxruntime refuses, e.g. float64 weights: that is counted, not failed);
* images: ``load_rgb``, then ``tinyface.detect`` and the bundled model's
  ``embed`` on what it read;
* the command line: ``tinyface inspect MODEL`` and ``tinyface embed --aligned
  IMAGE`` through ``cli.main``, with stdout and stderr captured at the file
  descriptors (so C libraries' messages count too).

A case ends "ok" (a valid result) or "error" (exactly one ``TinyfaceError``
with a one-line message; counted by class), or it is a failure: any other
exception, a message of several lines, outputs onnxruntime disagrees with, a
CLI run that exits 2 without exactly one "tinyface:" line on stderr (or prints
more than one line there whatever its exit code).

Cases run in a worker process (this file as a script) that the parent
watches: no answer within ``BUDGET_SECONDS`` is a "hang" (the worker is killed
and restarted after the case), a worker that dies is a "crash".  The worker
runs under ``FUZZ_LIMITS``, lower limits than the defaults, so that what any
case may allocate is bounded, and checks that bound for real: its peak RSS
may not grow more than ``RSS_BOUND_MB`` over its baseline after warming up
("memory"), and its address space is capped, so an allocation past the
bound is a MemoryError (a failure), not a machine out of memory.
"""
import functools
import json
import os
import resource
import select
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUDGET_SECONDS = 10.0
STARTUP_SECONDS = 600.0         # imports, model loads, the JIT cache (or a compile when it is cold)
FUZZ_LIMITS = {"TINYFACE_MAX_TENSOR_ELEMENTS": 2**22, "TINYFACE_MAX_RUN_BYTES": 2**27,
               "TINYFACE_MAX_IMAGE_PIXELS": 2**22}
# What a case may add to the worker's peak RSS: a run's buffers (MAX_RUN_BYTES), an image
# decoded at the pixel limit (~8 bytes a pixel as PIL and NumPy hold it), and 200 MB for
# the rest (a model's constants, onnxruntime's arenas, Python objects).
RSS_BOUND_MB = (FUZZ_LIMITS["TINYFACE_MAX_RUN_BYTES"] + 8 * FUZZ_LIMITS["TINYFACE_MAX_IMAGE_PIXELS"]) / 2**20 + 200
ADDRESS_SPACE_HEADROOM = 4 * 2**30
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None      # each case's files, in memory


@dataclass
class Outcome:
    status: str                  # "ok", "error" or "fail"
    label: str                   # "valid", the error class, or what failed
    detail: str = ""
    note: str = ""               # e.g. onnxruntime's verdict on a model


class Disagreement(AssertionError):
    """tinyface gave a result that onnxruntime, running the same model, contradicts."""


def outcome_of(feed):
    """Run ``feed()`` (which returns a note, or None) and classify how it ended."""
    import tinyface
    try:
        note = feed() or ""
    except tinyface.TinyfaceError as exc:
        message = str(exc)
        if "\n" in message or not message:
            return Outcome("fail", "message not one line", f"{type(exc).__name__}: {message[:300]!r}")
        return Outcome("error", type(exc).__name__, message[:300])
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome("fail", type(exc).__name__,
                       f"{str(exc)[:300]} (at {Path(where.filename).name}:{where.lineno})")
    return Outcome("ok", "valid", note=note)


# -- entry points -------------------------------------------------------------------

_bundled = {}


def bundled_model():
    import tinyface
    if "model" not in _bundled:
        _bundled["model"] = tinyface.load()
    return _bundled["model"]


def random_feed(model, rng):
    """A random float32 input per declared input: batch 1 or 2 (9 to 12, past ``RUN_CHUNK``,
    one time in ten), unknown dims 12 to 24."""
    batch = int(rng.integers(1, 3)) if rng.random() < 0.9 else int(rng.integers(9, 13))
    return {vi.name: rng.standard_normal([batch] + [int(rng.integers(12, 25)) if d is None else d
                                                    for d in vi.shape[1:]]).astype(np.float32)
            for vi in model.graph.inputs}


def feed_model(source, rng, compare=True):
    """Load ``source``, run it, embed a face with it; then ask onnxruntime (see module doc)."""
    import tinyface
    model = tinyface.load(source)
    feed = random_feed(model, rng)
    ours = model.run(feed if len(feed) > 1 else next(iter(feed.values())))
    if len(ours) != len(model.output_names) or any(o.dtype != np.float32 for o in ours):
        raise AssertionError(f"run gave {[(o.dtype, o.shape) for o in ours]} for outputs {model.output_names}")
    if model.info.input_size and len(feed) == 1:
        face = rng.integers(0, 256, (8, 7, 3), dtype=np.uint8)
        model.embed(face)
    return compare_with_onnxruntime(source, feed, ours) if compare else None


def compare_with_onnxruntime(source, feed, ours):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    stage("onnxruntime")
    try:
        session = ort.InferenceSession(source if isinstance(source, bytes) else str(source), options,
                                       providers=["CPUExecutionProvider"])
        theirs = session.run(None, feed)
    except Exception:
        return "onnxruntime refuses"
    if len(theirs) != len(ours):
        raise Disagreement(f"{len(ours)} outputs, onnxruntime gives {len(theirs)}")
    for k, (a, b) in enumerate(zip(ours, theirs)):
        b = np.asarray(b)
        if a.shape != b.shape:
            raise Disagreement(f"output {k} has shape {a.shape}, onnxruntime's {b.shape}")
        if not np.isfinite(b).all():
            return "not compared (onnxruntime gives NaN or inf)"
        bound = 1e-3 + 1e-3 * float(np.abs(b).max(initial=0))
        if not np.isfinite(a).all() or float(np.abs(a - b).max(initial=0)) > bound:
            raise Disagreement(f"output {k} differs from onnxruntime's by "
                               f"{float(np.nanmax(np.abs(a - b))):.3g} (bound {bound:.3g})")
    return "onnxruntime agrees"


def feed_image(source):
    """``load_rgb``, then ``detect`` and ``embed`` on what it read."""
    import tinyface
    from tinyface.face.image import load_rgb
    image = load_rgb(source)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or not image.flags.c_contiguous:
        raise AssertionError(f"load_rgb gave {image.dtype} {image.shape}")
    tinyface.detect(image)
    embedding = bundled_model().embed(image)
    if embedding.shape != (1, 128) or not np.isfinite(embedding).all():
        raise AssertionError(f"embed gave {embedding.shape}, finite: {np.isfinite(embedding).all()}")


def feed_cli(argv):
    """``cli.main(argv)`` with fd-level capture: exit 2 (an error) with exactly one "tinyface:"
    line on stderr; any other exit code (0, or ``inspect``'s for unsupported ops) with at
    most one; never a traceback or an internal error."""
    from tinyface.cli.main import main
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        code = _with_fds(out, err, lambda: main([str(a) for a in argv]))
        err.seek(0)
        lines = err.read().decode(errors="replace").strip().splitlines()
    if any("internal error" in line or "Traceback" in line for line in lines):
        raise AssertionError(f"exit {code}: {lines[:3]}")
    if (code == 2 and (len(lines) != 1 or not lines[0].startswith("tinyface:"))) or len(lines) > 1:
        raise AssertionError(f"exit {code} with {len(lines)} stderr lines: {lines[:3]}")
    if code != 0:
        return f"exit {code}"
    return None


def _with_fds(out, err, call):
    """``call()`` with file descriptors 1 and 2 sent to the files ``out`` and ``err``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    try:
        return call()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


# -- kinds of case --------------------------------------------------------------------

def case_model_bytes(rng, i, tmp):
    from fuzz_model_cases import mutate_bytes, seed_model
    data = mutate_bytes(rng, seed_model(rng).SerializeToString())
    return outcome_of(lambda: feed_model(data, rng))


def case_model_proto(rng, i, tmp):
    from fuzz_model_cases import mutated_model_bytes
    data, done = mutated_model_bytes(rng)
    out = outcome_of(lambda: feed_model(data, rng))
    out.detail = f"{'+'.join(done)}: {out.detail}" if out.status == "fail" else out.detail
    return out


def case_model_external(rng, i, tmp):
    from fuzz_model_cases import mutate_external
    path, what = mutate_external(rng, tmp / "model")
    out = outcome_of(lambda: feed_model(path, rng))
    if out.status == "fail":
        out.detail = f"{what}: {out.detail}"
    return out


@functools.lru_cache(maxsize=1)
def _truncations():
    from fuzz_image_cases import Truncations
    return Truncations()


@functools.lru_cache(maxsize=1)
def _mode_cases():
    from fuzz_image_cases import mode_cases
    return mode_cases()


def case_image_truncate(rng, i, tmp):
    j, data = _truncations().case(i)
    path = tmp / "image"
    path.write_bytes(data)
    return outcome_of(lambda: feed_image(path))


def case_image_bytes(rng, i, tmp):
    from fuzz_image_cases import mutated_file
    path = tmp / "image"
    path.write_bytes(mutated_file(rng))
    return outcome_of(lambda: feed_image(path))


def case_image_header(rng, i, tmp):
    from fuzz_image_cases import HEADER_FORMATS, claim_size
    data, size = claim_size(rng, HEADER_FORMATS[i % len(HEADER_FORMATS)])
    path = tmp / "image"
    path.write_bytes(data)
    out = outcome_of(lambda: feed_image(path))
    out.detail = f"claims {size}: {out.detail}"
    return out


def case_image_modes(rng, i, tmp):
    """A valid image must be read, the right way up."""
    what, source, expected = _mode_cases()[i % len(_mode_cases())]
    if isinstance(source, bytes):
        (tmp / "image").write_bytes(source)
        source = tmp / "image"
    out = outcome_of(lambda: feed_image(source))
    if out.status == "error" and expected is not None:
        return Outcome("fail", "valid image refused", f"{what}: {out.detail}")
    if out.status == "ok" and expected is not None:
        from tinyface.face.image import load_rgb
        if load_rgb(source).shape[:2] != expected:
            return Outcome("fail", "wrong shape", f"{what}: {load_rgb(source).shape}, expected {expected}")
    out.detail = f"{what}: {out.detail}"
    return out


def case_cli(rng, i, tmp):
    """``inspect`` on a mutated model file (even cases), ``embed --aligned`` on a mutated image."""
    from fuzz_image_cases import mutated_file
    from fuzz_model_cases import mutate_bytes, mutated_model_bytes, seed_model
    if i % 2 == 0:
        data = mutated_model_bytes(rng, real_files=False)[0] if rng.random() < 0.5 else \
            mutate_bytes(rng, seed_model(rng, real_files=False).SerializeToString())
        path = tmp / "model.onnx"
        path.write_bytes(data)
        return cli_outcome(["inspect", path])
    path = tmp / "face.jpg"
    path.write_bytes(mutated_file(rng))
    return cli_outcome(["embed", "--aligned", path])


def cli_outcome(argv):
    """``feed_cli``'s outcome; an exit code other than 0 (with its one line) counts as an error."""
    out = outcome_of(lambda: feed_cli(argv))
    return Outcome("error", f"CLI {out.note}") if out.note.startswith("exit") else out


KINDS = {"model_bytes": case_model_bytes, "model_proto": case_model_proto,
         "model_external": case_model_external, "image_truncate": case_image_truncate,
         "image_bytes": case_image_bytes, "image_header": case_image_header,
         "image_modes": case_image_modes, "cli": case_cli}


def ci_counts(kinds, scale=1):
    """Cases per kind in CI (``scale`` = 1) or ``scale`` times as many; the truncations
    cover every cut of the first file of each format, the mode cases are a fixed list."""
    from fuzz_image_cases import FIRST_OF_EACH_FORMAT, Truncations, mode_cases
    counts = {"model_bytes": 600, "model_proto": 900, "model_external": 150, "cli": 100,
              "image_truncate": Truncations().count(FIRST_OF_EACH_FORMAT), "image_bytes": 600,
              "image_header": 150}
    counts = {kind: n * scale for kind, n in counts.items()}
    counts["image_modes"] = len(mode_cases())
    return {kind: counts[kind] for kind in kinds}


def run_seeded(kinds, scale=1):
    """Run ``kinds`` at ``scale`` times their CI counts, seed 0; fail on any failure or a
    case left out.  Returns (counts, report) for a test's own checks."""
    counts = ci_counts(kinds, scale)
    report = run_cases(counts, seed=0)
    print(report.describe())
    assert sum(report.cases.values()) == sum(counts.values()), report.describe()
    assert not report.failures, report.describe()
    return counts, report


def case_rng(seed, kind, i):
    return np.random.default_rng([seed, list(KINDS).index(kind), i])


# -- the worker -----------------------------------------------------------------------

_protocol = None


def send(**message):
    _protocol.write(json.dumps(message) + "\n")
    _protocol.flush()


def stage(name):
    """Tell the parent which part of a case runs now (so a crash is put where it happened)."""
    if _protocol is not None:
        send(stage=name)


def warm_up():
    """Import, load and run everything once, so JIT loads and compiles happen before the budget.

    Kernels run on one thread: the cases are tiny, and on a busy machine waking a
    second thread costs far more than their work (see onnx_builders._single_thread).
    """
    import tinyface
    from fuzz_model_cases import BUILT_SEEDS, REAL_FILES
    tinyface.set_num_threads(1)
    rng = np.random.default_rng(0)
    feed_image(np.zeros((64, 64, 3), np.uint8))
    for seed in BUILT_SEEDS:
        feed_model(seed(rng).SerializeToString(), rng)
    for path in REAL_FILES.values():
        feed_model(path, rng, compare=False)
    tinyface.InferenceSession(str(REAL_FILES["pnet"]))


def peak_rss_mb():
    """This process's own peak RSS (VmHWM): ru_maxrss would carry a larger parent's over exec."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def worker(seed, specs):
    """Run ``specs`` ([(kind, start, stop)]), one JSON line per case on the original stdout."""
    global _protocol
    _protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)                                # anything else printed goes to the worker's stderr
    warnings.simplefilter("ignore")
    warm_up()
    if os.path.exists("/proc/self/statm"):             # Linux: cap the address space
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (size + ADDRESS_SPACE_HEADROOM, resource.RLIM_INFINITY))
    baseline = peak_rss_mb()
    send(ready=True, rss_mb=baseline)
    for kind, start, stop in specs:
        for i in range(start, stop):
            send(start=i, kind=kind)
            with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
                began = time.perf_counter()
                try:
                    out = KINDS[kind](case_rng(seed, kind, i), i, Path(tmp))
                except Exception as exc:          # in the harness, making the case
                    out = Outcome("fail", "harness error", f"{type(exc).__name__}: {exc}")
                seconds = time.perf_counter() - began
            send(kind=kind, case=i, status=out.status, label=out.label, detail=out.detail, note=out.note,
                 seconds=seconds, rss_mb=peak_rss_mb() - baseline)


# -- the parent ------------------------------------------------------------------------

@dataclass
class Report:
    cases: Counter = field(default_factory=Counter)         # kind -> cases run
    ok: Counter = field(default_factory=Counter)            # kind -> valid results
    errors: Counter = field(default_factory=Counter)        # TinyfaceError class -> count
    notes: Counter = field(default_factory=Counter)         # e.g. onnxruntime's verdicts
    failures: list = field(default_factory=list)            # dicts: kind, case, label, detail
    slowest: tuple = (0.0, "", -1)                           # (seconds, kind, case)
    peak_rss_mb: float = 0.0                                # over the worker's warm baseline
    seconds: float = 0.0
    workers: int = 0
    stopped_at: dict = field(default_factory=dict)          # kind -> (next case, stop) when out of time

    def record(self, msg):
        kind = msg["kind"]
        self.cases[kind] += 1
        if msg["status"] == "ok":
            self.ok[kind] += 1
        elif msg["status"] == "error":
            self.errors[msg["label"]] += 1
        else:
            self.fail(kind, msg["case"], msg["label"], msg["detail"])
        if msg["note"]:
            self.notes[msg["note"]] += 1
        self.slowest = max(self.slowest, (msg["seconds"], kind, msg["case"]))
        if msg["rss_mb"] > RSS_BOUND_MB >= self.peak_rss_mb:
            self.fail(kind, msg["case"], "memory", f"peak RSS {msg['rss_mb']:.0f} MB over the baseline "
                                                   f"(bound {RSS_BOUND_MB:.0f} MB)")
        self.peak_rss_mb = max(self.peak_rss_mb, msg["rss_mb"])

    def fail(self, kind, case, label, detail):
        self.failures.append({"kind": kind, "case": case, "label": label, "detail": detail})

    def as_dict(self):
        """The report as plain JSON-ready values."""
        return {name: dict(value) if isinstance(value, dict) else value for name, value in vars(self).items()}

    def describe(self):
        lines = [f"{sum(self.cases.values())} cases in {self.seconds:.0f} s ({self.workers} worker start(s)), "
                 f"{sum(self.ok.values())} valid results, {sum(self.errors.values())} TinyfaceErrors, "
                 f"{len(self.failures)} failures; peak RSS +{self.peak_rss_mb:.0f} MB; slowest case "
                 f"{self.slowest[0]:.2f} s ({self.slowest[1]} #{self.slowest[2]})"]
        lines += [f"  {kind:15} {n:6} cases, {self.ok[kind]:6} valid" for kind, n in sorted(self.cases.items())]
        lines += [f"  {label:27} {n:6}" for label, n in self.errors.most_common()]
        lines += [f"  note: {note:40} {n:6}" for note, n in self.notes.most_common()]
        lines += [f"  out of time: {kind} stopped before case {at} ({stop - at} not run)"
                  for kind, (at, stop) in sorted(self.stopped_at.items())]
        lines += [f"  FAIL {f['kind']} #{f['case']}: {f['label']}: {f['detail']}" for f in self.failures[:50]]
        return "\n".join(lines)


def _lines(proc, timeout):
    """The next line from ``proc``'s stdout (bytes), b"" at its end, None after ``timeout`` s."""
    buffer = proc.fuzz_buffer
    end = time.monotonic() + timeout
    while b"\n" not in buffer:
        left = end - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            return None
        chunk = os.read(proc.stdout.fileno(), 65536)
        if not chunk:
            return b""
        buffer += chunk
    line, _, proc.fuzz_buffer = buffer.partition(b"\n")
    return line


def run_cases(counts, seed=0, start=None, seconds=None, env=None, progress=None):
    """Run ``counts`` ({kind: cases}) in workers, each kind from case ``start[kind]`` (0);
    stop starting cases after ``seconds``.  ``progress(report)`` is called after each
    case.  Returns a :class:`Report`.
    """
    report = Report()
    began = time.monotonic()
    first = start or {}
    todo = [[kind, first.get(kind, 0), first.get(kind, 0) + n] for kind, n in counts.items() if n > 0]
    environment = dict(os.environ, **{k: str(v) for k, v in FUZZ_LIMITS.items()}, **(env or {}))
    while todo:
        report.workers += 1
        with tempfile.TemporaryFile() as log:
            proc = subprocess.Popen([sys.executable, str(Path(__file__)), str(seed)]
                                    + [f"{k}:{a}:{b}" for k, a, b in todo],
                                    stdout=subprocess.PIPE, stderr=log, env=environment, cwd=str(HERE))
            proc.fuzz_buffer = b""
            ended = _watch(proc, todo, report, began, seconds, progress)
            if ended:
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                kind, case, what = ended
                report.cases[kind] += 1
                report.fail(kind, case, what, " | ".join(tail))
                todo[0][1] = case + 1
                if todo[0][1] >= todo[0][2]:
                    todo.pop(0)
        if seconds is not None and time.monotonic() - began > seconds:
            report.stopped_at = {kind: (at, stop) for kind, at, stop in todo}
            break
    report.seconds = time.monotonic() - began
    return report


def _watch(proc, todo, report, began, seconds, progress):
    """Read ``proc``'s lines until it is done (None), or return (kind, case, failure) for the
    case it hung or died in.  Advances ``todo`` as cases finish."""
    timeout, current, where = STARTUP_SECONDS, None, ""
    try:
        while True:
            line = _lines(proc, timeout)
            if line is None or line == b"":
                if current is None and line == b"" and proc.wait() == 0:
                    return None
                if current is None:
                    raise RuntimeError(f"fuzz worker failed to start (exit {proc.poll()})")
                if line is None:
                    return current[0], current[1], f"hang (no answer in {BUDGET_SECONDS:.0f} s{where})"
                code = proc.wait()
                return current[0], current[1], f"crash (exit {code}{where})"
            msg = json.loads(line)
            if "ready" in msg:
                timeout = BUDGET_SECONDS
            elif "start" in msg:
                current, where = (msg["kind"], msg["start"]), ""
            elif "stage" in msg:
                where = f", in {msg['stage']}"
            else:
                report.record(msg)
                current = None
                todo[0][1] = msg["case"] + 1
                if todo[0][1] >= todo[0][2]:
                    todo.pop(0)
                if progress:
                    progress(report)
                if seconds is not None and time.monotonic() - began > seconds:
                    return None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- sizes far past the default limits, measured -------------------------------------------

def measure_big_cases(what):
    """Run ``fuzz_model_cases.big_model_cases`` (``what`` = "models") or
    ``fuzz_image_cases.big_image_cases`` ("images") in a fresh process at the default
    limits; returns a dict per case: what, status, label, detail, seconds, and rss_mb,
    how far the process's peak RSS rose while the case ran."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TINYFACE_MAX_")}
    run = subprocess.run([sys.executable, str(Path(__file__)), "measure", what], capture_output=True,
                         env=environment, cwd=str(HERE), timeout=STARTUP_SECONDS)
    if run.returncode != 0:
        raise RuntimeError(f"measuring worker failed (exit {run.returncode}): {run.stderr.decode()[-2000:]}")
    return [json.loads(line) for line in run.stdout.decode().splitlines()]


def _measure(what):
    import tinyface
    from fuzz_image_cases import big_image_cases
    from fuzz_model_cases import big_model_cases, seed_small_conv
    warnings.simplefilter("ignore")
    tinyface.set_num_threads(1)
    rng = np.random.default_rng(0)
    feed_model(seed_small_conv(rng).SerializeToString(), rng, compare=False)      # JIT loads first
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        if what == "models":
            cases = [(name, lambda source=source, shape=shape: _run_big_model(source, shape))
                     for name, source, shape in big_model_cases(Path(tmp))]
        else:
            cases = [(name, lambda path=path: feed_image(path)) for name, path in big_image_cases(Path(tmp))]
        for name, run in cases:
            before = peak_rss_mb()
            began = time.perf_counter()
            out = outcome_of(run)
            print(json.dumps({"what": name, "status": out.status, "label": out.label, "detail": out.detail,
                              "seconds": time.perf_counter() - began, "rss_mb": peak_rss_mb() - before}),
                  flush=True)


def _run_big_model(source, shape):
    import tinyface
    model = tinyface.load(source.SerializeToString() if hasattr(source, "SerializeToString") else source)
    if shape is not None:
        model.run(np.ones(shape, np.float32))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    if sys.argv[1] == "measure":
        _measure(sys.argv[2])
    else:
        worker(int(sys.argv[1]), [(k, int(a), int(b)) for k, a, b in (spec.split(":") for spec in sys.argv[2:])])
