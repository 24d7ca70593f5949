"""gallery.store: adding, reading, removing, the model check, bad files, and kill -9.

Most tests use a tiny 16-d model (tests/gallery_testing.tiny_model) so that
nothing here waits for a real network; the model only matters by its
fingerprint and embedding size.
"""
import os
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from gallery_testing import (batch_content, kill_after, open_ok, store_child, tiny_model)
from tinyface.errors import GalleryError
from tinyface.gallery.store import FaceRecord, FileRecord, Gallery, Problem
from tinyface.gallery.vectors import HEADER_BYTES
from tinyface.kernels.codes import encode, row_bytes
from tinyface.kernels.topk import reference_top_k


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture
def gallery(tmp_path, model):
    with Gallery(tmp_path / "g.db", model) as g:
        yield g


def unit(a):
    a = np.asarray(a, np.float64)
    return (a / np.linalg.norm(a, axis=-1, keepdims=True)).astype(np.float32)


def test_added_faces_persist_with_their_sources(tmp_path, model):
    emb = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    with Gallery(tmp_path / "g.db", model) as g:
        assert g.add(emb[:2], ["ann", "bob"], paths=["/a.jpg", "/b.jpg"], sha256=["a", "b"],
                     boxes=[(1, 2, 3, 4), None], landmarks=[np.ones((5, 2)), None],
                     scores=[0.9, None]) == [0, 1]
        assert g.add(emb[2], "ann") == [2]
    with Gallery(tmp_path / "g.db", model, create=False) as g:
        assert len(g) == 3 and g.dim == 16
        faces = g.faces()
        assert [f.identity for f in faces] == ["ann", "bob", "ann"]
        assert faces[0].path == "/a.jpg" and faces[0].sha256 == "a" and faces[0].box == (1, 2, 3, 4)
        assert faces[0].landmarks == [[1, 1]] * 5 and faces[0].score == pytest.approx(0.9)
        assert faces[1].box is None and faces[2].path is None
        vectors, live = g.vectors()
        np.testing.assert_array_equal(vectors, unit(emb))
        assert live is None
        assert g.identities() == [("ann", 2), ("bob", 1)]
        assert [f.id for f in g.faces(identity="ann")] == [0, 2]
        assert g.check().ok


def test_search_finds_the_nearest_faces(gallery):
    emb = np.random.default_rng(1).standard_normal((50, 16)).astype(np.float32)
    gallery.add(emb, [f"n{i}" for i in range(50)])
    scores, ids = gallery.search(emb[[7, 30]] * 3, k=4)          # the norm of a query does not matter
    assert ids[:, 0].tolist() == [7, 30]
    np.testing.assert_allclose(scores[:, 0], 1, atol=1e-6)
    full = unit(emb[[7, 30]]) @ unit(emb).T
    np.testing.assert_allclose(scores, -np.sort(-full, axis=1)[:, :4], atol=1e-6)


def test_an_empty_gallery_finds_nothing(gallery):
    scores, ids = gallery.search(np.ones(16, np.float32), k=3)
    assert scores.shape == ids.shape == (1, 0)


@pytest.mark.parametrize("embeddings, identities, message", [
    (np.ones((2, 15)), ["a", "b"], "2 embeddings of 16 values"),
    (np.full((1, 16), np.nan), ["a"], "NaN"),
    (np.zeros((1, 16)), ["a"], "all zeros"),
    (np.ones((1, 16)), [""], "non-empty string"),
    (np.ones((2, 16)), ["a"], "2 embeddings but 1 values"),
])
def test_bad_additions_are_refused(gallery, embeddings, identities, message):
    with pytest.raises(GalleryError, match=message):
        gallery.add(embeddings, identities)
    assert len(gallery) == 0 and gallery.check().ok


def test_a_face_is_added_once_per_file_and_index(gallery):
    gallery.add(np.ones((1, 16)), "a", sha256=["s"])
    with pytest.raises(GalleryError, match="already holds"):
        gallery.add(np.ones((1, 16)), "a", sha256=["s"])
    with pytest.raises(GalleryError, match="already holds"):
        gallery.commit([], np.zeros((0, 16)), [FileRecord("t", "/t", 0), FileRecord("t", "/t", 0)])
    assert len(gallery) == 1 and gallery.counts().files == 0 and gallery.check().ok


def test_a_commit_drops_files_already_indexed(gallery):
    faces, emb, files = batch_content(3)
    assert len(gallery.commit(faces, emb, files)) == 4
    assert gallery.commit(faces, emb, files) == []               # the same file again: nothing
    assert gallery.indexed([files[0].sha256, "other"]) == {files[0].sha256}
    assert gallery.counts().batches == 1 and gallery.check().ok


def test_the_log_keeps_the_latest_word_on_each_path(gallery):
    gallery.commit([], np.zeros((0, 16)), [], [Problem("/x.jpg", None, "unreadable", "first")])
    gallery.commit([], np.zeros((0, 16)), [], [Problem("/x.jpg", None, "unreadable", "again")])
    assert [p.message for p in gallery.problems()] == ["again"]
    gallery.commit([], np.zeros((0, 16)), [FileRecord("s", "/x.jpg", 0)])   # indexed at last
    assert gallery.problems() == []


def test_removed_faces_are_gone_from_search_and_their_files_forgotten(gallery, tmp_path):
    emb = np.eye(6, 16, dtype=np.float32)
    photos = tmp_path / "photos"
    paths = [str(photos / "a" / "1.jpg"), str(photos / "a" / "2.jpg"), str(photos / "b" / "3.jpg"),
             str(photos / "c.jpg"), str(photos / "c.jpg"), "/other.jpg"]
    shas = ["s1", "s2", "s3", "s4", "s4", "s6"]
    faces = [FaceRecord(i, p, s, n) for i, p, s, n in
             zip(["ann", "ann", "bob", "cy", "cy", "dee"], paths, shas, [0, 0, 0, 0, 1, 0])]
    files = [FileRecord(s, p, 2 if s == "s4" else 1) for s, p in dict(zip(shas, paths)).items()]
    gallery.commit(faces, emb, files)
    assert gallery.remove(paths=[photos / "a"]) == 2                 # everything under a folder
    assert gallery.remove(ids=[3]) == 1                              # one of c.jpg's two faces
    assert gallery.remove(identities=["dee"]) == 1
    assert gallery.remove(identities=["nobody"]) == 0
    assert [f.id for f in gallery.faces()] == [2, 4]
    assert gallery.indexed(shas) == {"s3", "s4"}                     # c.jpg keeps a face
    scores, ids = gallery.search(emb, k=6)
    assert ids.shape == (6, 2) and set(ids.ravel()) == {2, 4}
    counts = gallery.counts()
    assert (counts.faces, counts.removed, counts.slots) == (2, 4, 6)
    assert gallery.check().ok


def test_another_model_is_refused(tmp_path, model):
    with Gallery(tmp_path / "g.db", model) as g:
        g.add(np.ones((1, 16)), "a")
    other = tiny_model(tmp_path / "other.onnx", seed=1)
    with Gallery(tmp_path / "g.db", other) as g:
        for attempt in (lambda: g.add(np.ones((1, 16)), "a"), lambda: g.search(np.ones(16))):
            with pytest.raises(GalleryError, match="was made with model tiny.onnx .* not other.onnx"):
                attempt()
        assert len(g) == 1


def test_files_that_are_not_galleries_are_refused(tmp_path, model):
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 not a database at all" * 100)
    db = sqlite3.connect(tmp_path / "other.db")
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    cases = [(tmp_path, "is a directory"), (tmp_path / "photo.jpg", "not a tinyface gallery"),
             (tmp_path / "other.db", "not a tinyface gallery"),
             (tmp_path / "missing" / "g.db", "does not exist")]
    for path, message in cases:
        with pytest.raises(GalleryError, match=message):
            Gallery(path, model)
    with pytest.raises(GalleryError, match="no gallery there"):
        Gallery(tmp_path / "new.db", model, create=False)
    assert not (tmp_path / "new.db").exists()


def test_a_gallery_of_another_format_is_refused(tmp_path, model):
    Gallery(tmp_path / "g.db", model).close()
    db = sqlite3.connect(tmp_path / "g.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format'")
    db.commit()
    db.close()
    with pytest.raises(GalleryError, match="format '99'"):
        Gallery(tmp_path / "g.db", model)


def test_an_interrupted_batch_is_overwritten_by_the_next(gallery):
    gallery.add(np.eye(2, 16), ["a", "b"])
    with open(gallery.vectors_path, "ab") as f:             # what a kill between write and commit leaves
        f.write(b"\x7f" * 1000)
    report = gallery.check()
    assert report.ok and "1000 bytes after the committed rows" in report.notes[0]
    gallery.add(np.eye(3, 16)[2:], "c")
    assert os.path.getsize(gallery.vectors_path) == HEADER_BYTES + 3 * 16 * 4
    np.testing.assert_array_equal(gallery.vectors()[0], np.eye(3, 16))
    assert gallery.check().ok and not gallery.check().notes


def test_a_reader_sees_what_another_connection_commits(tmp_path, model):
    with Gallery(tmp_path / "g.db", model) as writer, Gallery(tmp_path / "g.db", model) as reader:
        writer.add(np.eye(2, 16), ["a", "b"])
        assert reader.search(np.eye(1, 16), 5)[1].tolist() == [[0, 1]]
        writer.add(np.eye(3, 16)[2:], "c")
        assert reader.search(np.eye(3, 16)[2:], 5)[1].tolist() == [[2, 0, 1]]


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_exactly_the_committed_batches(tmp_path, model):
    """A child commits batch after batch (vectors fsynced, then the transaction); it is
    killed at a random instant, eight times.  Each time the gallery must open, pass the
    check and hold batches 0 .. m-1 exactly, m the batches the child had reported
    committed, or one more (committed, not yet reported)."""
    rng = np.random.default_rng(13)
    path = tmp_path / "g.db"
    m = 0
    for _ in range(8):
        child = store_child(path, model)
        assert child.stdout.readline().strip() == "ready"
        kill_after(child, rng.uniform(0.0, 0.4))
        reported = [int(line) for line in child.stdout.read().split()]
        child.stdout.close()
        acknowledged = reported[-1] + 1 if reported else m
        with open_ok(path, model) as g:
            m = g.counts().batches
            assert acknowledged <= m <= acknowledged + 1
            contents = [batch_content(b) for b in range(m)]
            want = [(f.identity, f.path, f.sha256, f.face_index, f.box, f.landmarks.tolist(), f.score)
                    for faces, _, _ in contents for f in faces]
            got = [(f.identity, f.path, f.sha256, f.face_index, f.box, f.landmarks, f.score)
                   for f in g.faces()]
            assert got == want
            vectors, _ = g.vectors()
            if m:
                np.testing.assert_array_equal(vectors, np.concatenate([unit(e) for _, e, _ in contents]))
            assert [s for s, *_ in g.files()] == [files[0].sha256 for _, _, files in contents]
    assert m >= 8                                     # the children did get work done


# ------------------------------------------------------------ the int8 codes

@pytest.fixture
def codes_always(monkeypatch):
    """Search with the codes however small the gallery (the switch is measured for 128-d)."""
    monkeypatch.setattr("tinyface.gallery.search.CODED_ROWS", 1)


def make_old(gallery, keep=0):
    """What a gallery made before the codes looks like (keep = 0), or one a tinyface that
    does not write them extended after ``keep`` coded rows (codes file left as it was)."""
    db = sqlite3.connect(gallery.path)
    if keep:
        db.execute("UPDATE meta SET value = ? WHERE key = 'coded'", (str(keep),))
    else:
        db.execute("DELETE FROM meta WHERE key = 'coded'")
        gallery.codes_path.unlink()
    db.commit()
    db.close()


def coded(gallery):
    return int(gallery.meta().get("coded", 0))


def assert_codes_match(gallery):
    vectors, _ = gallery.vectors()
    np.testing.assert_array_equal(gallery.codes(len(vectors)), encode(np.asarray(vectors)))


def test_each_batch_writes_its_codes(gallery):
    rng = np.random.default_rng(2)
    for n in (3, 1, 5):
        gallery.add(rng.standard_normal((n, 16)), "a")
    assert coded(gallery) == 9
    assert os.path.getsize(gallery.codes_path) == HEADER_BYTES + 9 * row_bytes(16)
    assert_codes_match(gallery)
    assert gallery.check().ok and not gallery.check().notes


def test_an_old_gallery_gets_its_codes_at_the_next_search(gallery, codes_always):
    emb = np.random.default_rng(3).standard_normal((40, 16)).astype(np.float32)
    gallery.add(emb, "a")
    want = gallery.search(emb[:2], 5)
    make_old(gallery)
    assert "no int8 codes yet" in gallery.check().notes[0]
    for got, expected in zip(gallery.search(emb[:2], 5), want):
        np.testing.assert_array_equal(got, expected)
    assert coded(gallery) == 40
    assert_codes_match(gallery)
    assert gallery.check().ok and not gallery.check().notes


def test_an_old_gallery_gets_its_codes_at_the_next_batch(gallery):
    rng = np.random.default_rng(4)
    gallery.add(rng.standard_normal((7, 16)), "a")
    make_old(gallery)
    gallery.add(rng.standard_normal((2, 16)), "b")
    assert coded(gallery) == 9
    assert_codes_match(gallery)


def test_rows_added_without_codes_are_searched_in_float32_while_the_lock_is_taken(tmp_path, model, codes_always):
    """An older tinyface added rows 5.. without codes and left stale codes after row 5 (an
    interrupted batch of its own): search must not trust them, and codes the rows once it
    can take the write lock."""
    rng = np.random.default_rng(5)
    emb = rng.standard_normal((12, 16)).astype(np.float32)
    with Gallery(tmp_path / "g.db", model) as g:
        g.add(emb[:5], "a")
        g.add(-emb[5:], "b")
        make_old(g, keep=5)
        with open(g.codes_path, "r+b") as f:  # codes of other vectors after row 5
            f.seek(HEADER_BYTES + 5 * row_bytes(16))
            f.write(encode(unit(emb[5:])).tobytes())
    with Gallery(tmp_path / "g.db", model) as g, Gallery(tmp_path / "g.db", model) as other:
        vectors, _ = g.vectors()
        np.testing.assert_array_equal(vectors[5:], unit(-emb[5:]))
        want = reference_top_k(vectors, unit(emb[5:7]), 3)[1]
        other.db.execute("BEGIN IMMEDIATE")   # another writer holds the lock
        try:
            assert g.search(emb[5:7], 3)[1].tolist() == want.tolist()
            assert coded(g) == 5
            assert "cover 5 of the 12 rows" in g.check().notes[0]
        finally:
            other.db.execute("COMMIT")
        assert g.search(emb[5:7], 3)[1].tolist() == want.tolist()
        assert coded(g) == 12
        assert_codes_match(g)


@pytest.mark.parametrize("damage", ["missing", "foreign", "short"])
def test_a_codes_file_missing_or_not_whole_is_rebuilt(gallery, damage, tmp_path, model, codes_always):
    emb = np.random.default_rng(6).standard_normal((20, 16)).astype(np.float32)
    gallery.add(emb, "a")
    if damage == "missing":
        gallery.codes_path.unlink()
    elif damage == "foreign":
        with Gallery(tmp_path / "other.db", model) as other:
            other.add(emb, "a")
            gallery.codes_path.write_bytes(other.codes_path.read_bytes())
    else:
        os.truncate(gallery.codes_path, HEADER_BYTES + 7 * row_bytes(16))
    report = gallery.check()
    assert report.ok and "derived data" in report.notes[0]
    with Gallery(gallery.path, model) as fresh:
        assert fresh.search(emb[3], 1)[1].tolist() == [[3]]
        assert_codes_match(fresh)
        assert fresh.check().ok and not fresh.check().notes


@pytest.mark.slow
def test_kill_9_while_search_codes_an_old_gallery(tmp_path, model):
    """A child codes an old gallery's 300,000 rows (``Gallery.codes``, as the first search
    does), once to the end and then killed at a random instant, six times, the codes reset
    to none before each: the gallery passes the check and its codes are none or all of the
    rows, and right."""
    rng = np.random.default_rng(14)
    path = tmp_path / "g.db"
    with Gallery(path, model) as g:
        for _ in range(3):
            g.add(rng.standard_normal((100_000, 16)), "a")
    code = ("import sys, time\nfrom tinyface.gallery.store import Gallery\n"
            "g = Gallery(sys.argv[1], sys.argv[2])\nprint('ready', flush=True)\n"
            "t = time.perf_counter()\ng.codes(300_000)\nprint(time.perf_counter() - t, flush=True)\n")
    outcomes = set()
    for attempt in range(7):
        if path.with_name("g.db-codes").exists():
            with Gallery(path, model) as g:
                make_old(g)
        child = subprocess.Popen([sys.executable, "-c", code, str(path), str(model)],
                                 stdout=subprocess.PIPE, text=True)
        assert child.stdout.readline().strip() == "ready"
        if attempt == 0:                       # uninterrupted: how long coding takes
            seconds = float(child.stdout.readline())
            child.wait()
        else:
            kill_after(child, rng.uniform(0, 1.2 * seconds))
        child.stdout.close()
        with open_ok(path, model) as g:
            n = coded(g)
            assert n in (0, 300_000)
            outcomes.add(n)
            if n:
                assert_codes_match(g)
    assert outcomes == {0, 300_000}           # kills before and after the commit
