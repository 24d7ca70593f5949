"""Where a command's first run spends its Numba compile time.

    python bench/compile_times.py verify examples/astronaut.jpg examples/astronaut_variant.jpg
    python bench/compile_times.py --cache DIR embed --aligned tests/data/lfw-hard-pairs/X.jpg

Runs one ``tinyface`` command in this process, with an empty JIT cache (a new
temporary folder as ``TINYFACE_CACHE_DIR``, unless ``--cache DIR``), and
listens to Numba's ``numba:compile`` events: one per specialisation that is
compiled rather than loaded from the cache, nested when a kernel compiles a
``cache=True`` function it calls.  Prints, per kernel, the specialisations
compiled, the time inclusive of what it compiled inside and exclusive of that,
and the part of the exclusive time spent holding Numba's LLVM lock
(optimisation and machine code; the rest is Numba's typing and lowering), all
in CPU seconds of this process, then the command's wall and CPU time.
"""
import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

from numba.core import event


class CompileTimes(event.Listener):
    """Per kernel: [specialisations, inclusive s, exclusive s, LLVM s], in CPU seconds of this
    process (steadier than wall time on a shared machine; Numba compiles on one thread)."""

    def __init__(self):
        self.stack = []             # per compile in progress: [start, s in nested compiles, LLVM s]
        self.rows = defaultdict(lambda: [0, 0.0, 0.0, 0.0])
        self.total = 0.0
        self.compiled = []          # (kernel, argument types, exclusive s)

    def on_start(self, ev):
        self.stack.append([time.process_time(), 0.0, 0.0])

    def on_end(self, ev):
        start, nested, llvm = self.stack.pop()
        took = time.process_time() - start
        if self.stack:
            self.stack[-1][1] += took
        else:
            self.total += took
        dispatcher = ev.data["dispatcher"]
        name = f"{dispatcher.py_func.__module__.rsplit('.', 1)[-1]}.{dispatcher.py_func.__name__}"
        row = self.rows[name]
        row[0] += 1
        row[1] += took
        row[2] += took - nested
        row[3] += llvm
        self.compiled.append((name, ev.data["args"], took - nested))


class LLVMTimes(event.Listener):
    """Adds the CPU time spent holding Numba's LLVM lock (optimisation, machine code) to the
    innermost compile in progress."""

    def __init__(self, compiles):
        self.compiles, self.depth, self.start = compiles, 0, 0.0

    def on_start(self, ev):
        if self.depth == 0:
            self.start = time.process_time()
        self.depth += 1

    def on_end(self, ev):
        self.depth -= 1
        if self.depth == 0 and self.compiles.stack:
            self.compiles.stack[-1][2] += time.process_time() - self.start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cache", help="JIT cache folder (default: a new, empty temporary one)")
    p.add_argument("--signatures", action="store_true", help="also list every specialisation compiled")
    p.add_argument("command", nargs=argparse.REMAINDER, help="a tinyface command and its arguments")
    args = p.parse_args()
    os.environ["TINYFACE_CACHE_DIR"] = args.cache or tempfile.mkdtemp(prefix="tinyface-jit-")
    start, cpu = time.perf_counter(), time.process_time()
    from tinyface.cli.main import main as tinyface_main
    times = CompileTimes()
    with event.install_listener("numba:compile", times), \
            event.install_listener("numba:llvm_lock", LLVMTimes(times)):
        code = tinyface_main(args.command)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(f"\ncache {os.environ['TINYFACE_CACHE_DIR']}; exit {code}")
    print("| kernel | specialisations | inclusive CPU s | exclusive CPU s | of which LLVM |")
    print("|---|---|---|---|---|")
    for name, (count, inclusive, exclusive, llvm) in sorted(times.rows.items(), key=lambda r: -r[1][2]):
        print(f"| {name} | {count} | {inclusive:.1f} | {exclusive:.1f} | {llvm:.1f} |")
    if args.signatures:
        for name, argtypes, seconds in times.compiled:
            print(f"{seconds:6.1f} s  {name}{tuple(argtypes)}")
    print(f"\nwall {wall:.1f} s, CPU {cpu:.1f} s (import included), compiling {times.total:.1f} CPU s")
    return code


if __name__ == "__main__":
    sys.exit(main())
