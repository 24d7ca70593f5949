"""gallery.index: walking, identities, problems, photos, resume after kill -9, bounded memory."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import tinyface
from gallery_testing import (CROPS, PHOTO, assert_same_faces, committed_batches, crops_tree,
                             open_ok, tiny_model)
from tinyface.errors import TinyfaceError
from tinyface.gallery.index import image_files, index, plan, read_identity_csv
from tinyface.gallery.store import Gallery


@pytest.fixture(scope="module")
def model():
    return tinyface.load()


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """40 aligned crops (37 distinct) of 20 people in folders p0..p19, and a file that is
    not an image."""
    root = crops_tree(tmp_path_factory.mktemp("crops"))
    (root / "p3" / "broken.jpg").write_bytes(b"not a jpeg")
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Raw photos: one face, two faces, no face, and a grey image of the model's input size."""
    root = tmp_path_factory.mktemp("photos")
    photo = Image.open(PHOTO).convert("RGB")
    (root / "astro").mkdir()
    photo.save(root / "astro" / "one.png")
    canvas = Image.new("RGB", (512 + 40 + 256, 512), (128, 128, 128))
    canvas.paste(photo, (0, 0))
    canvas.paste(photo.resize((256, 256), Image.Resampling.LANCZOS), (552, 128))
    canvas.save(root / "astro" / "two.png")
    (root / "none").mkdir()
    Image.new("RGB", (320, 240), (128, 128, 128)).save(root / "none" / "grey.png")
    Image.new("RGB", (112, 112), (128, 128, 128)).save(root / "none" / "grey112.png")
    return root


def test_files_are_walked_recursively_in_sorted_order(tmp_path):
    for name in ("b/2.jpg", "b/1.PNG", "a/z/3.jpeg", "a/notes.txt", "c.tif"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "odd.dat").write_bytes(b"x")
    found = [os.path.relpath(p, tmp_path) for p in image_files([tmp_path, tmp_path / "odd.dat"])]
    assert found == ["c.tif", "a/z/3.jpeg", "b/1.PNG", "b/2.jpg", "odd.dat"]
    with pytest.raises(TinyfaceError, match="no such file or folder"):
        list(image_files([tmp_path / "missing"]))


def test_identities_from_a_csv(tmp_path):
    (tmp_path / "ids.csv").write_text("path,identity\nx/1.jpg, ann \n\n/abs/2.jpg,bob\n")
    assert read_identity_csv(tmp_path / "ids.csv") == {str(tmp_path / "x" / "1.jpg"): "ann",
                                                      "/abs/2.jpg": "bob"}
    (tmp_path / "bad.csv").write_text("a.jpg,ann\nb.jpg\n")
    with pytest.raises(TinyfaceError, match="bad.csv, line 2: expected 'path,identity'"):
        read_identity_csv(tmp_path / "bad.csv")
    with pytest.raises(TinyfaceError, match="cannot read identities"):
        read_identity_csv(tmp_path / "missing.csv")


def test_aligned_crops_are_indexed_with_folder_identities(tmp_path, crops, model):
    with Gallery(tmp_path / "g.db", model) as g:
        report = index(g, [crops], aligned=True, batch=7, progress=False)
        assert (report.files, report.faces) == (41, 37)
        assert report.skipped + report.notes["duplicates"] == 3      # the repeated files
        assert report.problems == {"unreadable": 1}
        assert g.identities() == [(f"p{n}", 1 if n in (11, 17, 18) else 2)
                                  for n in sorted(range(20), key=str)]
        assert [(p.problem, os.path.basename(p.path)) for p in g.problems()] == [("unreadable", "broken.jpg")]
        face = g.faces(identity="p0")[0]
        assert face.path == str(crops / "p0" / "0_fn_0_aligned.jpg") and face.box is None
        want = model.embed([crops / "p0" / "0_fn_0_aligned.jpg"])[0]
        np.testing.assert_allclose(g.vectors()[0][face.id], want / np.linalg.norm(want), atol=1e-6)
        again = index(g, [crops], aligned=True, batch=7, progress=False)
        assert (again.faces, again.skipped, again.problems) == (0, 41, {})
        assert g.check().ok


def test_identities_from_a_csv_and_files_without_one(tmp_path, crops, model):
    (tmp_path / "ids.csv").write_text(f"{crops}/p0/0_fn_0_aligned.jpg,zoe\n{crops}/p0/0_fn_1_aligned.jpg,zoe\n")
    with Gallery(tmp_path / "g.db", model) as g:
        report = index(g, [crops / "p0", crops / "p1"], f"csv:{tmp_path / 'ids.csv'}", aligned=True,
                       progress=False)
        assert report.faces == 2 and report.problems == {"no identity": 2}
        assert g.identities() == [("zoe", 2)]
        assert g.counts().files == 2            # the other two are not recorded: tried again next time


def test_photos_are_detected_and_aligned(tmp_path, photos, model):
    with Gallery(tmp_path / "g.db", model) as g:
        report = index(g, [photos], progress=False)
        assert report.faces == 3 and report.problems == {"no face": 1}
        assert report.notes["several faces"] == 1 and report.notes["taken as aligned"] == 1
        one = g.faces(identity="astro")
        assert [os.path.basename(f.path) for f in one] == ["one.png", "two.png"]
        (face,) = tinyface.detect(photos / "astro" / "one.png")
        assert one[0].box == pytest.approx(face.box, abs=1e-9)
        assert np.asarray(one[0].landmarks) == pytest.approx(face.landmarks, abs=1e-3)
        assert one[0].score == pytest.approx(face.score)
        assert [os.path.basename(p.path) for p in g.problems()] == ["grey.png"]
    with Gallery(tmp_path / "all.db", model) as g:
        report = index(g, [photos / "astro"], all_faces=True, progress=False)
        assert report.faces == 3 and [f.face_index for f in g.faces()] == [0, 0, 1]
        big, small = g.faces()[1:]
        assert big.box[2] - big.box[0] > 1.5 * (small.box[2] - small.box[0])    # largest first


def test_batch_must_be_positive(tmp_path, crops, model):
    with Gallery(tmp_path / "g.db", model) as g:
        with pytest.raises(TinyfaceError, match="positive number of files"):
            list(plan(g, [crops], batch=0))


def index_command(*argv):
    return [sys.executable, "-m", "tinyface.cli.main", "index", *map(str, argv)]


@pytest.mark.slow
def test_kill_9_then_resume_gives_the_uninterrupted_gallery(tmp_path, crops, model):
    """`tinyface index` killed at random instants (each time after at least one more
    batch committed), then run to the end: the same faces, files and log as one
    uninterrupted run, none twice, none missing."""
    with Gallery(tmp_path / "whole.db", model) as whole:
        index(whole, [crops], aligned=True, batch=3, progress=False)
    path = tmp_path / "resumed.db"
    command = index_command(crops, "--gallery", path, "--aligned", "--batch", "3", "--quiet")
    rng = np.random.default_rng(5)
    kills = 0
    for _ in range(6):
        before = committed_batches(path)
        child = subprocess.Popen(command)
        while child.poll() is None and committed_batches(path) == before:
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.03))    # within a few batches: a whole run can take under 0.3 s
        if child.poll() is not None:
            break
        child.kill()
        child.wait()
        kills += 1
        open_ok(path, model).close()
    assert kills >= 2
    subprocess.run(command, check=True)
    with open_ok(path, model) as resumed, open_ok(tmp_path / "whole.db", model) as whole:
        assert_same_faces(resumed, whole)
        assert sorted(f[:3] for f in resumed.files()) == sorted(f[:3] for f in whole.files())


def rss_mb(pid) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def ten_thousand_crops(tmp_path_factory):
    """10,000 distinct 112x112 JPEG crops: the shipped ones with small random changes of
    brightness and noise, 100 per folder."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    bases = [np.asarray(Image.open(p).convert("RGB"), np.int16) for p in sorted(CROPS.glob("*.jpg"))]
    for i in range(10_000):
        folder = root / f"id{i // 100:03d}"
        if i % 100 == 0:
            folder.mkdir()
        shifted = bases[i % len(bases)] + rng.integers(-4, 5) + rng.integers(-2, 3, (112, 112, 3))
        Image.fromarray(np.clip(shifted, 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.jpg", quality=90)
    return root


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_memory_stays_bounded_over_ten_thousand_files(tmp_path, ten_thousand_crops):
    """Index 10,000 aligned crops in a child process, sampling its resident memory
    against the batches committed: after the first 2,000 files it must not trend upwards
    (least-squares slope over the rest of the run under 1.5 MB per 1,000 files).  The
    model is a tiny one, so that the test times the indexing, not MobileFaceNet (10,000
    faces through it take a minute on an idle 2-core machine, far more on a busy one)."""
    path = tmp_path / "g.db"
    model = tiny_model(tmp_path / "tiny.onnx")
    child = subprocess.Popen(index_command(ten_thousand_crops, "--gallery", path, "--aligned",
                                           "--quiet", "--model", model))
    samples = []
    while child.poll() is None:
        try:
            samples.append((committed_batches(path) * 64, rss_mb(child.pid)))
        except (OSError, AssertionError):       # the child is ending
            break
        time.sleep(0.1)
    assert child.wait() == 0
    with open_ok(path, model) as g:
        assert len(g) == 10_000
    late = np.array([(n, mb) for n, mb in samples if n >= 2000])
    assert len(late) >= 10, samples
    slope = np.polyfit(late[:, 0] / 1000, late[:, 1], 1)[0]
    print(f"RSS {late[0, 1]:.0f} MB at {late[0, 0]:.0f} files, {late[-1, 1]:.0f} MB at "
          f"{late[-1, 0]:.0f}; slope {slope:.2f} MB per 1000 files")
    assert slope < 1.5, (slope, late[:: max(1, len(late) // 20)].tolist())
