"""Gallery benchmarks: 1:N search against faiss, and indexing throughput.

    python bench/gallery.py [--quick] [--json FILE] [--sizes 10000,100000,1000000]
                            [--only search|index] [--coded-rows N] [--coded-queries M]

1. search: synthetic galleries of N random unit 128-d float32 vectors (seed 0)
   and their int8 codes (``kernels.codes.encode``), written once as .npy files
   that each worker process memory-maps, as a gallery's vectors and codes files
   are.  Latency of 1 query and of 100 queries in one call, on 1 and 2
   threads, for four engines, each in a fresh process of its own and
   alternating per round: tinyface (``gallery.search.exact_search`` with the
   codes, as ``Gallery.search`` calls it: the codes are scanned first where
   ``use_codes`` says so), tinyface f32 (the same without codes: every float32
   row read, as before the codes), faiss ``IndexFlatIP`` (``search(q, 5)``;
   faiss-cpu, a bench-only dependency), and NumPy (BLAS matrix product plus
   ``argpartition``, for orientation); k = 5.  Figures are medians over rounds
   of the per-process medians; ratio = tinyface / faiss (< 1: tinyface
   faster).  The engines' top-5 ids for the first query are compared.  "MB
   read": the bytes tinyface's search reads (codes, plus the float32 rows it
   re-scores; a count, not a timing), and the GB/s that makes at its median.
   ``--coded-rows N --coded-queries M``: tinyface's switch to the codes (from
   N rows, up to M queries) for this run, to re-measure ``kernels.tuning``'s.
2. indexing: faces per second through ``tinyface.gallery.index`` into a fresh
   gallery, on aligned crops (``--aligned``) and on raw photos (detection,
   alignment, embedding), on 1 and 2 threads, and through
   ``tinyface.distributed.index`` on a 2-worker ``LocalCluster`` (one thread
   each).  Model loading and JIT compilation are excluded (a warm-up batch
   runs first); committing (fsync per batch) is included.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DIM, K, QUERIES = 128, 5, 100


# ------------------------------------------------------------------ search

def make_vectors(path, codes_path, n):
    from tinyface.kernels.codes import encode
    rng = np.random.default_rng(0)
    x = np.empty((n, DIM), np.float32)
    for start in range(0, n, 1 << 17):
        part = rng.standard_normal((min(n, start + (1 << 17)) - start, DIM)).astype(np.float32)
        x[start:start + len(part)] = part / np.linalg.norm(part, axis=1, keepdims=True)
    np.save(path, x)
    np.save(codes_path, np.concatenate([encode(x[i:i + (1 << 16)]) for i in range(0, n, 1 << 16)]))


def make_queries(path, vectors):
    """100 queries: 50 near stored vectors (a real search finds its person), 50 random."""
    rng = np.random.default_rng(1)
    x = np.load(vectors, mmap_mode="r")
    near = np.asarray(x[rng.integers(0, len(x), 50)]) + 0.3 * rng.standard_normal((50, DIM)) / np.sqrt(DIM)
    q = np.concatenate([near, rng.standard_normal((50, DIM))]).astype(np.float32)
    np.save(path, q / np.linalg.norm(q, axis=1, keepdims=True))


def bytes_read(x, codes, q):
    """Bytes tinyface's search of queries q reads: the codes and the float32 rows it
    re-scores if ``use_codes``, else every float32 row (as ``exact_search`` scans them)."""
    from tinyface.gallery.search import CHUNK_ROWS, use_codes
    from tinyface.kernels.topk import TopK
    if not use_codes(len(x), len(q)):
        return x.nbytes
    top = TopK(q, K)
    for start in range(0, len(x), CHUNK_ROWS):
        top.scan(x[start:start + CHUNK_ROWS], start, None, codes[start:start + CHUNK_ROWS])
    return codes.nbytes + top.rescored * x.shape[1] * 4


def search_worker(engine, vectors, codes_path, queries, m, threads, runs, switch):
    """Print {"seconds": median of ``runs`` searches of the first m queries, "ids": top-5
    of query 0, "bytes": read per search (tinyface)}, after two warm-up searches.
    ``switch``: "rows,queries" for ``gallery.search``'s switch to the codes, or "-"."""
    q = np.load(queries)[:m]
    read = None
    if engine.startswith("tinyface"):
        import tinyface
        import tinyface.gallery.search
        from tinyface.gallery.search import exact_search
        if switch != "-":
            rows, most = switch.split(",")
            tinyface.gallery.search.CODED_ROWS, tinyface.gallery.search.CODED_QUERIES = int(rows), int(most)
        tinyface.set_num_threads(threads)
        x = np.load(vectors, mmap_mode="r")
        codes = np.load(codes_path, mmap_mode="r") if engine == "tinyface" else None
        search = lambda: exact_search(x, q, K, None, codes)[1]  # noqa: E731
        read = bytes_read(x, codes, q) if engine == "tinyface" else x.nbytes
    elif engine == "faiss":
        import faiss
        faiss.omp_set_num_threads(threads)
        index = faiss.IndexFlatIP(DIM)
        index.add(np.load(vectors))
        search = lambda: index.search(q, K)[1]                  # noqa: E731
    else:
        x = np.load(vectors)

        def search():
            s = q @ x.T
            top = np.argpartition(-s, K, axis=1)[:, :K]
            order = np.argsort(-np.take_along_axis(s, top, 1), axis=1)
            return np.take_along_axis(top, order, 1)
    for _ in range(2):
        search()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        ids = search()
        times.append(time.perf_counter() - t)
    print(json.dumps({"seconds": float(np.median(times)), "ids": [int(i) for i in ids[0]], "bytes": read}))


def run_worker(args, env=None):
    res = subprocess.run([sys.executable, __file__, "--worker", *map(str, args)], capture_output=True,
                         text=True, check=True, env={**os.environ, **(env or {})})
    return json.loads(res.stdout.strip().splitlines()[-1])


ENGINES = ("tinyface", "tinyface-f32", "faiss", "numpy")


def search_table(sizes, rounds, runs, folder, switch):
    rows = []
    for n in sizes:
        vectors, codes, queries = folder / f"x{n}.npy", folder / f"c{n}.npy", folder / f"q{n}.npy"
        make_vectors(vectors, codes, n)
        make_queries(queries, vectors)
        for threads in (1, 2):
            for m in (1, QUERIES):
                times = {e: [] for e in ENGINES}
                ids = {}
                for _ in range(rounds):
                    for e in ENGINES:
                        env = {"OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)} \
                            if e == "numpy" else None
                        out = run_worker(["search", e, vectors, codes, queries, m, threads,
                                          max(3, runs if n < 10**6 else runs // 2), switch], env)
                        times[e].append(out["seconds"])
                        ids[e] = out["ids"]
                        if e == "tinyface":
                            read = out["bytes"]
                med = {e: float(np.median(t)) for e, t in times.items()}
                rows.append({"n": n, "threads": threads, "queries": m,
                             **{f"{e.replace('-', '_')}_ms": 1e3 * med[e] for e in ENGINES},
                             "ratio": float(np.median(np.array(times["tinyface"]) / np.array(times["faiss"]))),
                             "same_top5": ids["tinyface"] == ids["faiss"] == ids["tinyface-f32"],
                             "mb_read": read / 1e6, "gb_per_s": read / med["tinyface"] / 1e9})
                print_search_row(rows[-1])
        for f in (vectors, codes, queries):
            f.unlink()
    return rows


SEARCH_HEADER = ("| gallery | threads | queries | tinyface ms | tinyface f32 ms | faiss ms | numpy ms | ratio "
                 "| same top-5 | MB read | GB/s |\n|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|")


def print_search_row(r):
    print(f"| {r['n']:>9,} | {r['threads']} | {r['queries']:>3} | {r['tinyface_ms']:9.2f} | "
          f"{r['tinyface_f32_ms']:9.2f} | {r['faiss_ms']:9.2f} | {r['numpy_ms']:9.2f} | {r['ratio']:.2f} | "
          f"{'yes' if r['same_top5'] else 'NO'} | {r['mb_read']:.1f} | {r['gb_per_s']:.1f} |", flush=True)


# ------------------------------------------------------------------ indexing

def make_photos(folder, crops, photos):
    """``crops`` distinct aligned 112x112 crops (the shipped LFW crops with small random
    changes) and ``photos`` raw photos (the astronaut photo scaled, shifted and re-toned),
    10 per identity folder."""
    from PIL import Image
    rng = np.random.default_rng(0)
    bases = [np.asarray(Image.open(p).convert("RGB"), np.int16)
             for p in sorted((ROOT / "tests/data/lfw-hard-pairs").glob("*.jpg"))]
    for i in range(crops):
        d = folder / "crops" / f"id{i // 10:04d}"
        d.mkdir(parents=True, exist_ok=True)
        img = bases[i % len(bases)] + rng.integers(-4, 5) + rng.integers(-2, 3, (112, 112, 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:05d}.jpg", quality=90)
    astronaut = Image.open(ROOT / "tests/data/astronaut.png").convert("RGB")
    for i in range(photos):
        d = folder / "photos" / f"id{i // 10:04d}"
        d.mkdir(parents=True, exist_ok=True)
        side = int(rng.integers(480, 1024))
        canvas = Image.new("RGB", (side + 64, side + 48), tuple(int(v) for v in rng.integers(0, 255, 3)))
        canvas.paste(astronaut.resize((side, side)), (int(rng.integers(0, 64)), int(rng.integers(0, 48))))
        img = np.asarray(canvas, np.int16) + rng.integers(-6, 7)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(d / f"{i:05d}.jpg", quality=90)


def index_worker(kind, folder, threads, cluster):
    """Print {"faces": n, "seconds": s} of indexing folder/<kind> into a fresh gallery."""
    import tinyface
    from tinyface.gallery.index import index
    tinyface.set_num_threads(threads)
    aligned = kind == "crops"
    files = sorted(str(p) for p in (Path(folder) / kind).rglob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        warm = tinyface.Gallery(Path(tmp) / "warm.db")
        run = index
        if cluster:
            import logging

            import distributed
            import tinyface.distributed
            lc = distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                          dashboard_address=None, silence_logs=logging.CRITICAL)
            client = distributed.Client(lc)
            run = lambda g, paths, **kw: tinyface.distributed.index(client, paths, g, **kw)  # noqa: E731
        run(warm, files[:4], aligned=aligned, batch=1, progress=False)   # load models, compile
        gallery = tinyface.Gallery(Path(tmp) / "g.db")
        t = time.perf_counter()
        report = run(gallery, [Path(folder) / kind], aligned=aligned, progress=False)
        seconds = time.perf_counter() - t
        if cluster:
            client.close()
            lc.close()
    print(json.dumps({"faces": report.faces, "seconds": seconds}))


def index_table(crops, photos, rounds, folder):
    make_photos(folder, crops, photos)
    rows = []
    for kind in ("crops", "photos"):
        for label, threads, cluster in (("1 thread", 1, 0), ("2 threads", 2, 0), ("2-worker LocalCluster", 1, 1)):
            results = [run_worker(["index", kind, folder, threads, cluster]) for _ in range(rounds)]
            rates = [r["faces"] / r["seconds"] for r in results]
            rows.append({"input": "aligned crops" if kind == "crops" else "raw photos", "run": label,
                         "faces": results[0]["faces"], "faces_per_s": float(np.median(rates))})
            r = rows[-1]
            print(f"| {r['input']} | {r['run']} | {r['faces']} | {r['faces_per_s']:.1f} |", flush=True)
    return rows


# ------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer rounds and files")
    ap.add_argument("--json", help="also write the results to this JSON file")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="gallery sizes to search")
    ap.add_argument("--only", choices=["search", "index"])
    ap.add_argument("--coded-rows", type=int, help="search the codes from this many rows (default: tuning's)")
    ap.add_argument("--coded-queries", type=int, help="search the codes up to this many queries")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "search":
            engine, vectors, codes, queries, m, threads, runs, switch = rest
            return search_worker(engine, vectors, codes, queries, int(m), int(threads), int(runs), switch)
        what, folder, threads, cluster = rest
        return index_worker(what, folder, int(threads), int(cluster))
    rounds = 2 if args.quick else 5
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.only in (None, "search"):
            print("\n" + SEARCH_HEADER)
            sizes = [int(s) for s in args.sizes.split(",")]
            switch = "-"
            if args.coded_rows is not None or args.coded_queries is not None:
                from tinyface.gallery.search import CODED_QUERIES, CODED_ROWS
                switch = (f"{CODED_ROWS if args.coded_rows is None else args.coded_rows},"
                          f"{CODED_QUERIES if args.coded_queries is None else args.coded_queries}")
            results["search"] = search_table(sizes, rounds, 5 if args.quick else 15, tmp, switch)
        if args.only in (None, "index"):
            print("\n| input | run | faces | faces/s |")
            print("|---|---|---:|---:|")
            crops, photos = (200, 20) if args.quick else (1000, 60)
            results["index"] = index_table(crops, photos, 1 if args.quick else 3, tmp)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
