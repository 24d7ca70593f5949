"""``tinyface eval pairs`` and ``tinyface calibrate`` on the faces the repository ships.

The pairs are tests/data/lfw-hard-pairs (hard by construction: the figures are
low, which is fine here), as the shipped CSV and as a small LFW-format tree of
symlinks made in a temporary folder.
"""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface
from cli_testing import assert_one_line_error, run
from onnx_builders import single_thread_fixture
from tinyface.evaluation import metrics
from tinyface.evaluation.pairs import read_pairs
from tinyface.paths import default_model_path

single_thread = single_thread_fixture()

ROOT = Path(__file__).resolve().parent.parent
HARD = ROOT / "tests" / "data" / "lfw-hard-pairs"
CSV = HARD / "pairs.csv"
BUNDLED = default_model_path()
UNCALIBRATED = ROOT / "tests" / "data" / "models" / "mobilefacenet-relu6-opset10.onnx"


@pytest.fixture(scope="module")
def model():
    return tinyface.load()


@pytest.fixture(scope="module")
def lfw_tree(tmp_path_factory):
    """An LFW-format file over the shipped faces: 10 same + 10 different pairs, in LFW's
    <root>/<Name>/<Name>_000i.jpg layout; the last same pair names an image that is not there."""
    d = tmp_path_factory.mktemp("lfw")
    root = d / "crops"
    same = [p for p in read_pairs(CSV).pairs if p.same][:10]
    different = [p for p in read_pairs(CSV).pairs if not p.same][:10]
    lines = ["10"]
    for k, pair in enumerate(same[:9]):
        (root / f"Same_{k}").mkdir(parents=True)
        for i, image in enumerate((pair.a, pair.b), 1):
            os.symlink(image, root / f"Same_{k}" / f"Same_{k}_{i:04d}.jpg")
        lines.append(f"Same_{k}\t1\t2")
    lines.append("Ghost\t1\t2")
    for k, pair in enumerate(different):
        for who, image in (("A", pair.a), ("B", pair.b)):
            (root / f"{who}_{k}").mkdir()
            os.symlink(image, root / f"{who}_{k}" / f"{who}_{k}_0001.jpg")
        lines.append(f"A_{k}\t1\tB_{k}\t1")
    (d / "pairsDevTest.txt").write_text("\n".join(lines) + "\n")
    return d


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One embedding cache for the runs on the shipped CSV with --aligned (each embeds the
    same 98 faces with the same model file, or a byte-for-byte copy of it)."""
    return tmp_path_factory.mktemp("cache") / "hard.npz"


@pytest.fixture
def model_copy(tmp_path):
    shutil.copy(BUNDLED, tmp_path / BUNDLED.name)
    shutil.copy(BUNDLED.with_suffix(".json"), tmp_path / BUNDLED.with_suffix(".json").name)
    return tmp_path / BUNDLED.name


def reference_scores(model, pairs):
    emb = model.embed([p.a for p in pairs] + [p.b for p in pairs])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    n = len(pairs)
    return np.sum(emb[:n] * emb[n:], axis=1), np.array([p.same for p in pairs])


# -- eval pairs -----------------------------------------------------------------------------

def test_eval_csv_text(capsys, cache):
    code, out, err = run(capsys, "eval", "pairs", CSV, "--aligned", "--folds", "5", "--cache", cache)
    assert code == 0, err
    assert out.startswith("pairs: pairs.csv (CSV, 38 same + 11 different)\n")
    assert "scored 49 of 49 pairs; skipped 0\n" in out
    assert "mean ± std over 5 stratified folds" in out
    assert "TAR at FAR 1e-01: " in out                       # 11 different pairs: 1e-1 only
    assert "TAR at FAR 1e-02: not measurable with 11 different-person pairs (needs 100)" in out
    assert "at the model's threshold" in out


def test_eval_csv_json_matches_the_metrics(capsys, model):
    code, out, _ = run(capsys, "eval", "pairs", CSV, "--aligned", "--json")      # no cache: fresh
    assert code == 0
    report = json.loads(out)
    scores, same = reference_scores(model, read_pairs(CSV).pairs)
    roc = metrics.roc_curve(scores, same)
    assert report["auc"] == pytest.approx(metrics.auc(roc), abs=1e-6)
    assert report["eer"] == pytest.approx(metrics.eer(roc)[0], abs=1e-6)
    assert report["folds"]["count"] == 10 and report["skipped_images"] == []
    folds = metrics.stratified_folds(same, 10)
    expected = np.mean([f.accuracy for f in metrics.kfold(scores, same, folds)])
    assert report["folds"]["accuracy_mean"] == pytest.approx(expected)


def test_eval_lfw_format_with_a_skipped_pair_plot_and_cache(capsys, lfw_tree, tmp_path):
    pytest.importorskip("matplotlib")
    argv = ["eval", "pairs", lfw_tree / "pairsDevTest.txt", "--root", lfw_tree / "crops",
            "--aligned", "--json", "--folds", "4", "--cache", tmp_path / "emb.npz"]
    code, out, err = run(capsys, *argv, "--plot", tmp_path / "roc.png")
    assert code == 0, err
    report = json.loads(out)
    assert report["pairs"] == "pairsDevTest.txt (LFW format, 10 same + 10 different)"
    assert (report["scored"], report["skipped"]) == (19, 1)
    assert report["skipped_by_reason"] == {"no face": 0, "unreadable": 1}
    skipped = report["skipped_images"]
    assert [Path(s["image"]).name for s in skipped] == ["Ghost_0001.jpg", "Ghost_0002.jpg"]
    assert all("no such file" in s["reason"] for s in skipped)
    f = report["folds"]
    assert f["accuracy_with_skipped_mean"] < f["accuracy_mean"]
    with Image.open(tmp_path / "roc.png") as im:
        assert im.format == "PNG"
    assert (tmp_path / "emb.npz").is_file()
    code, again, _ = run(capsys, *argv)                      # from the cache
    assert code == 0 and json.loads(again) == report


def test_eval_flip(capsys, model, tmp_path):
    pairs = read_pairs(CSV).pairs[:12]
    (tmp_path / "some.csv").write_text("".join(f"{p.a},{p.b},{int(p.same)}\n" for p in pairs))
    code, out, _ = run(capsys, "eval", "pairs", tmp_path / "some.csv", "--aligned", "--flip",
                       "--folds", "3", "--json")
    assert code == 0
    n = len(pairs)
    emb = model.embed([p.a for p in pairs] + [p.b for p in pairs], flip=True)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    scores = np.sum(emb[:n] * emb[n:], axis=1)
    same = np.array([p.same for p in pairs])
    assert json.loads(out)["auc"] == pytest.approx(metrics.auc(metrics.roc_curve(scores, same)), abs=1e-6)


def test_eval_photos_skip_those_without_a_face(capsys, tmp_path):
    Image.new("RGB", (160, 120), (128, 128, 128)).save(tmp_path / "grey.png")
    shutil.copy(ROOT / "examples" / "astronaut.jpg", tmp_path / "a.jpg")
    shutil.copy(ROOT / "examples" / "astronaut_variant.jpg", tmp_path / "b.jpg")
    (tmp_path / "mine.csv").write_text("path_a,path_b,same\na.jpg,b.jpg,1\na.jpg,grey.png,0\n"
                                       f"{HARD / '0_fp_0_aligned.jpg'},b.jpg,0\n"
                                       f"{HARD / '0_fn_0_aligned.jpg'},{HARD / '0_fn_1_aligned.jpg'},1\n")
    code, out, err = run(capsys, "eval", "pairs", tmp_path / "mine.csv", "--folds", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["skipped"] == 1 and report["skipped_by_reason"]["no face"] == 1
    assert report["skipped_images"][0]["reason"] == "no face: none detected in 160x120 pixels"


@pytest.mark.parametrize("extra, match", [
    (["--folds", "1"], "--folds must be between 2"),
    (["--root", "/nonexistent/folder"], "is not a folder"),
])
def test_eval_bad_options(capsys, extra, match):
    code, out, err = run(capsys, "eval", "pairs", CSV, "--aligned", *extra)
    assert_one_line_error(code, out, err)
    assert match in err


def test_eval_bad_pair_file(capsys, tmp_path):
    (tmp_path / "pairs.txt").write_text("10 300\nA\t1\t2\n")
    code, out, err = run(capsys, "eval", "pairs", tmp_path / "pairs.txt", "--aligned")
    assert_one_line_error(code, out, err)
    assert "announces 10 set(s) of 300 same + 300 different pairs (6000 lines), the file has 1" in err


def test_eval_nothing_readable(capsys, tmp_path):
    (tmp_path / "p.csv").write_text("a.jpg,b.jpg,1\nc.jpg,d.jpg,0\n")
    code, out, err = run(capsys, "eval", "pairs", tmp_path / "p.csv", "--aligned")
    assert_one_line_error(code, out, err)
    assert "no pair could be scored; e.g." in err and "no such file" in err


# -- calibrate and verify --------------------------------------------------------------------

def test_calibrate_writes_the_sidecar_and_verify_uses_it(capsys, model_copy, model, cache):
    code, out, err = run(capsys, "calibrate", CSV, "--aligned", "--best-accuracy", "--model", model_copy,
                         "--cache", cache)
    assert code == 0, err
    assert out.startswith("threshold ") and "for best accuracy on pairs.csv (CSV, 38 same" in out
    assert f"written to {model_copy.with_suffix('.json')}" in out
    entries = json.loads(model_copy.with_suffix(".json").read_text())
    scores, same = reference_scores(model, read_pairs(CSV).pairs)
    best = metrics.best_threshold(scores, same)
    assert entries["threshold"] == pytest.approx(best.threshold, abs=1e-6)
    record = entries["calibration"]
    assert record["method"] == "best accuracy" and record["pairs"].startswith("pairs.csv (CSV")
    assert record["accuracy"] == pytest.approx(best.accuracy) and record["far"] == pytest.approx(best.far)
    assert (record["scored"], record["skipped"], record["aligned"], record["flip"]) == (49, 0, True, False)
    assert entries["mean"] == [123.675, 116.28, 103.53]         # the other keys are kept

    a, b = HARD / "0_fn_0_aligned.jpg", HARD / "0_fn_1_aligned.jpg"
    code, out, _ = run(capsys, "verify", "--aligned", a, b, "--model", model_copy)
    assert f"(threshold {entries['threshold']:.4f}, FAR {100 * record['far']:.2f}% on pairs.csv)" in out
    code, out, _ = run(capsys, "verify", "--aligned", a, b, "--model", model_copy, "--flip")
    assert "on pairs.csv, measured without --flip)" in out
    code, out, _ = run(capsys, "verify", a, b, "--model", model_copy)          # detected, not aligned
    assert "on pairs.csv, measured on aligned crops)" in out
    code, out, _ = run(capsys, "verify", "--aligned", a, b, "--model", model_copy, "--threshold", "0.99")
    assert code == 1 and out.endswith("(threshold 0.99)\n")


def test_calibrate_for_a_far(capsys, model_copy, cache):
    code, out, err = run(capsys, "calibrate", CSV, "--aligned", "--far", "0.1", "--model", model_copy,
                         "--cache", cache)
    assert code == 0, err
    record = json.loads(model_copy.with_suffix(".json").read_text())["calibration"]
    assert record["method"] == "far" and record["target_far"] == 0.1 and record["far"] <= 0.1


def test_calibrate_dry_run_writes_nothing(capsys, model_copy, cache):
    before = model_copy.with_suffix(".json").read_text()
    code, out, _ = run(capsys, "calibrate", CSV, "--aligned", "--best-accuracy", "--dry-run",
                       "--model", model_copy, "--cache", cache)
    assert code == 0 and "written" not in out
    assert model_copy.with_suffix(".json").read_text() == before


def test_calibrate_far_too_small_for_the_pairs(capsys, model_copy, cache):
    code, out, err = run(capsys, "calibrate", CSV, "--aligned", "--far", "1e-3", "--model", model_copy,
                         "--cache", cache)
    assert_one_line_error(code, out, err)
    assert "needs at least 1000 different-person pairs; these pairs have 11" in err


def test_calibrate_needs_a_goal(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(capsys, "calibrate", CSV, "--aligned")
    assert exit_info.value.code == 2


def test_verify_with_an_uncalibrated_model(capsys):
    a = HARD / "0_fn_0_aligned.jpg"
    code, out, _ = run(capsys, "verify", "--aligned", a, a, "--model", UNCALIBRATED)
    assert code == 0 and "(threshold 0.35, not calibrated for this model)" in out


def test_calibrate_bad_far_fails_before_embedding(capsys, model_copy, monkeypatch):
    from tinyface.evaluation import verification
    monkeypatch.setattr(verification, "embed_images", None)       # would fail if reached
    code, out, err = run(capsys, "calibrate", CSV, "--aligned", "--far", "2", "--model", model_copy)
    assert_one_line_error(code, out, err)
    assert "the target FAR must be between 0 and 1, got 2" in err


def test_calibrate_nothing_readable(capsys, model_copy, tmp_path):
    (tmp_path / "p.csv").write_text("a.jpg,b.jpg,1\nc.jpg,d.jpg,0\n")
    code, out, err = run(capsys, "calibrate", tmp_path / "p.csv", "--aligned", "--best-accuracy",
                         "--model", model_copy)
    assert_one_line_error(code, out, err)
    assert "no pair could be scored; e.g." in err


def identify_trees(tmp_path, people=(0, 1, 2, 3, 4, 5, 6, 7)):
    """gallery/p<N>/<N>_fn_0, probes/p<N>/<N>_fn_1 (the same person's other photo), and
    distractors: the hard different-person pairs' faces."""
    for n in people:
        for kind, i in (("gallery", 0), ("probes", 1)):
            (tmp_path / kind / f"p{n}").mkdir(parents=True)
            shutil.copy(HARD / f"{n}_fn_{i}_aligned.jpg", tmp_path / kind / f"p{n}")
    (tmp_path / "distractors").mkdir()
    for f in sorted(HARD.glob("*_fp_*_aligned.jpg")):
        shutil.copy(f, tmp_path / "distractors")
    return tmp_path


def test_eval_identify_reports_what_the_embeddings_give(tmp_path, capsys, single_thread):
    trees = identify_trees(tmp_path)
    gallery = tmp_path / "g.db"
    code, _, err = run(capsys, "index", trees / "gallery", "--gallery", gallery, "--aligned", "--quiet")
    assert code == 0, err
    code, out, err = run(capsys, "eval", "identify", "--gallery", gallery, "--probes", trees / "probes",
                         "--distractors", trees / "distractors", "--aligned", "--json")
    assert code == 0, err
    report = json.loads(out)
    model = tinyface.load()
    people = sorted(p.name for p in (trees / "gallery").iterdir())
    g = model.embed([next((trees / "gallery" / p).iterdir()) for p in people])
    probes = model.embed([next((trees / "probes" / p).iterdir()) for p in people])
    d = model.embed(sorted((trees / "distractors").iterdir()))
    from tinyface.evaluation.identify import identification_report
    want = identification_report(probes, people, g, people, d)
    assert report["probes"] == report["identities"] == len(people)
    assert report["rank1"] == want["rank1"] and report["rank5"] == want["rank5"]
    np.testing.assert_allclose(report["cmc"], want["cmc"])
    assert [r["distractors"] for r in report["distractors"]] == [r["distractors"] for r in want["distractors"]]
    assert report["distractors"][-1]["distractors"] == len(d)
    assert report["skipped"]["identity not in the gallery"] == 0


def test_eval_identify_counts_probes_whose_identity_is_not_in_the_gallery(tmp_path, capsys, single_thread):
    trees = identify_trees(tmp_path, people=(0, 1, 2))
    shutil.copytree(HARD.parent / "lfw-hard-pairs", tmp_path / "probes" / "stranger",
                    ignore=lambda d, names: [n for n in names if n != "3_fn_0_aligned.jpg"])
    gallery = tmp_path / "g.db"
    assert run(capsys, "index", trees / "gallery", "--gallery", gallery, "--aligned", "--quiet")[0] == 0
    code, out, err = run(capsys, "eval", "identify", "--gallery", gallery, "--probes", trees / "probes",
                         "--aligned")
    assert code == 0, err
    assert "3 probes against 3 identities" in out
    assert "1 identity not in the gallery" in out


def test_eval_identify_on_a_missing_gallery_is_one_error(tmp_path, capsys):
    code, out, err = run(capsys, "eval", "identify", "--gallery", tmp_path / "none.db", "--probes", HARD)
    assert_one_line_error(code, out, err)
    assert "no gallery there" in err


def test_eval_identify_int8_runs_against_an_int8_gallery_only(tmp_path, capsys, single_thread):
    trees = identify_trees(tmp_path, people=(0, 1, 2))
    for name, extra in (("int8.db", ["--int8"]), ("fp32.db", [])):
        assert run(capsys, "index", trees / "gallery", "--gallery", tmp_path / name, "--aligned", "--quiet",
                   *extra)[0] == 0
    code, out, err = run(capsys, "eval", "identify", "--gallery", tmp_path / "int8.db", "--probes",
                         trees / "probes", "--aligned", "--int8")
    assert code == 0 and "3 probes against 3 identities" in out, err
    code, out, err = run(capsys, "eval", "identify", "--gallery", tmp_path / "fp32.db", "--probes",
                         trees / "probes", "--aligned", "--int8")
    assert_one_line_error(code, out, err)
    assert "was made with model mobilefacenet-relu6-opset18.onnx" in err
