"""Helpers shared by the gallery tests (tests/test_gallery_*.py, tests/test_cli_gallery.py)."""
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx

from onnx_builders import GraphBuilder, conv_weight
from tinyface.gallery.store import FaceRecord, FileRecord, Gallery

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
CROPS = TESTS / "data" / "lfw-hard-pairs"      # 112x112 aligned crops
PHOTO = TESTS / "data" / "astronaut.png"       # a raw photo with one face
OPSET10 = TESTS / "data" / "models" / "mobilefacenet-relu6-opset10.onnx"
SAME_PERSON_PAIRS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)


def crops_tree(dest, pairs=SAME_PERSON_PAIRS) -> Path:
    """dest/p<N>/<N>_fn_<0|1>_aligned.jpg for each same-person pair N: identities by folder.
    Among pairs 0-19 three files repeat an earlier one (11_fn_1 = 10_fn_1, 17_fn_1 = 18_fn_0
    = 16_fn_1): 40 files, 37 distinct."""
    dest = Path(dest)
    for n in pairs:
        (dest / f"p{n}").mkdir(parents=True, exist_ok=True)
        for i in (0, 1):
            shutil.copy(CROPS / f"{n}_fn_{i}_aligned.jpg", dest / f"p{n}")
    return dest


def tiny_model(path, seed=0, dim=16) -> Path:
    """A small embedding model (112x112 input, ``dim``-d output) saved at ``path``."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(opset=13)
    y = g.add("Conv", ["input", g.const(conv_weight(rng, dim, 3, 8, 8))], strides=[8, 8])
    y = g.add("Relu", [y])
    y = g.add("GlobalAveragePool", [y])
    y = g.add("Flatten", [y])
    model = g.build(inputs={"input": ["N", 3, 112, 112]}, outputs=[y])
    onnx.helper.set_model_props(model, {"tinyface.input_size": "112x112",
                                        "tinyface.embedding_size": str(dim)})
    onnx.save(model, path)
    return Path(path)


def rows_of(gallery) -> dict:
    """{(sha256, face_index): (identity, path, box, landmarks, score)} and {same key: vector}."""
    vectors, _ = gallery.vectors()
    rows, vecs = {}, {}
    for f in gallery.faces():
        key = (f.sha256, f.face_index)
        assert key not in rows, f"duplicate face {key}"
        rows[key] = (f.identity, f.path, f.box, f.landmarks, f.score)
        vecs[key] = np.array(vectors[f.id])
    return rows, vecs


def assert_same_faces(a, b, paths_a=None, paths_b=None):
    """Galleries ``a`` and ``b`` hold the same faces (paths compared relative to the
    folders ``paths_a``, ``paths_b`` when given) with embeddings equal to cosine 1e-6."""
    rows_a, vecs_a = rows_of(a)
    rows_b, vecs_b = rows_of(b)

    def relative(rows, base):
        if base is None:
            return rows
        return {k: (v[0], os.path.relpath(v[1], base), *v[2:]) for k, v in rows.items()}
    assert relative(rows_a, paths_a) == relative(rows_b, paths_b)
    for key in vecs_a:
        assert float(vecs_a[key] @ vecs_b[key]) > 1 - 1e-6, key
    problems = lambda g, base: sorted((os.path.relpath(p.path, base) if base else p.path,   # noqa: E731
                                       p.problem) for p in g.problems())
    assert problems(a, paths_a) == problems(b, paths_b)


# ------------------------------------------------------------------ content of the kill tests

def batch_content(b, dim=16):
    """The faces, embeddings and file of batch number ``b`` (1 to 4 faces), for the store's
    kill test: the child adds them, the parent checks them."""
    n = 1 + b % 4
    emb = np.random.default_rng(b).standard_normal((n, dim)).astype(np.float32)
    sha = hashlib.sha256(str(b).encode()).hexdigest()
    path = f"/photos/batch{b}.jpg"
    faces = [FaceRecord(f"id{b % 7}", path, sha, i, (i, 2.0, 30.0 + i, 40.0),
                        np.full((5, 2), b + i / 8), 0.5 + i / 10) for i in range(n)]
    return faces, emb, [FileRecord(sha, path, n)]


STORE_CHILD = """
import sys
sys.path.insert(0, {tests!r})
from gallery_testing import batch_content
from tinyface.gallery.store import Gallery
gallery = Gallery(sys.argv[1], sys.argv[2])
b = gallery.counts().batches
print("ready", flush=True)
while True:
    gallery.commit(*batch_content(b))
    print(b, flush=True)
    b += 1
"""


def store_child(gallery_path, model_path):
    """Start a child adding batch_content(b), b = 0, 1, ..., to the gallery, forever."""
    code = STORE_CHILD.format(tests=str(TESTS))
    return subprocess.Popen([sys.executable, "-c", code, str(gallery_path), str(model_path)],
                            stdout=subprocess.PIPE, text=True)


def kill_after(child, seconds):
    """SIGKILL ``child`` after ``seconds`` (or when it has ended), and reap it."""
    time.sleep(seconds)
    if child.poll() is None:
        os.kill(child.pid, signal.SIGKILL)
    child.wait()


def committed_batches(gallery_path) -> int:
    """How many batches a gallery holds, read with a plain SQLite connection (0 while the
    gallery does not exist yet)."""
    import sqlite3
    if not Path(gallery_path).exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{gallery_path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
        finally:
            db.close()
    except sqlite3.OperationalError:           # tables not created yet
        return 0


def open_ok(path, model=None) -> Gallery:
    """Open the gallery at ``path`` and assert it passes the integrity check."""
    gallery = Gallery(path, model, create=False)
    report = gallery.check()
    assert report.ok, report.failures
    return gallery
