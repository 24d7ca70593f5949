"""The gallery subcommands, in process: index, search, gallery info|list|remove."""
import json

import pytest
from PIL import Image

from cli_testing import assert_one_line_error, run
from gallery_testing import CROPS, OPSET10, PHOTO, crops_tree

EXAMPLES = CROPS.parent.parent.parent / "examples"


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Four people as aligned crops, the astronaut as a raw photo, a grey photo, a broken file."""
    root = crops_tree(tmp_path_factory.mktemp("photos"), pairs=(0, 1, 2, 3))
    (root / "astronaut").mkdir()
    Image.open(PHOTO).convert("RGB").save(root / "astronaut" / "a.png")
    (root / "nobody").mkdir()
    Image.new("RGB", (300, 200), (128, 128, 128)).save(root / "nobody" / "grey.png")
    (root / "nobody" / "broken.jpg").write_bytes(b"junk")
    return root


@pytest.fixture(scope="module")
def gallery(photos, tmp_path_factory):
    """The photos indexed once, by the CLI (module scope: the tests below read it)."""
    path = tmp_path_factory.mktemp("g") / "people.db"
    from cli_testing import main
    assert main(["index", str(photos), "--gallery", str(path), "--quiet"]) == 0
    return path


def test_index_reports_counts_and_problems_then_resumes(photos, tmp_path, capsys):
    g = tmp_path / "g.db"
    code, out, err = run(capsys, "index", photos, "--gallery", g, "--batch", "3")
    assert code == 0 and out == ""
    *progress, summary, problems = err.strip().splitlines()
    assert "\r" not in err and progress[-1].startswith("indexing 11/11 files 100%  9 faces")
    assert summary.startswith("tinyface: 11 files: 9 faces added, 0 already indexed, 2 problems")
    assert problems == (f"tinyface: 2 files with problems (1 no face, 1 unreadable); "
                        f"see `tinyface gallery list {g} --log`")
    code, out, err = run(capsys, "index", photos, "--gallery", g, "--quiet")
    assert code == 0 and out == "" and err == ""
    code, out, err = run(capsys, "index", photos, "--gallery", g)
    assert "0 faces added, 11 already indexed, 0 problems" in err


def test_info_sums_up_and_checks(gallery, capsys):
    code, out, err = run(capsys, "gallery", "info", gallery)
    assert code == 0 and err == ""
    assert "model: mobilefacenet-relu6-opset18.onnx (fingerprint " in out
    assert "faces: 9 of 5 identities, from 11 files (2 without a face); 0 removed" in out
    assert "integrity: ok" in out
    code, out, _ = run(capsys, "gallery", "info", gallery, "--json")
    info = json.loads(out)
    assert info["faces"] == 9 and info["integrity"] == {"ok": True, "failures": [], "notes": []}


def test_info_fails_on_a_damaged_gallery(tmp_path, photos, capsys):
    g = tmp_path / "g.db"
    run(capsys, "index", photos / "p0", "--gallery", g, "--aligned", "--quiet")
    with open(f"{g}-vectors", "r+b") as f:
        f.seek(100)
        f.write(b"\1\2\3\4")
    code, out, _ = run(capsys, "gallery", "info", g)
    assert code == 2 and "integrity: FAILED" in out and "CRC-32" in out


def test_list_identities_faces_and_log(gallery, capsys):
    code, out, _ = run(capsys, "gallery", "list", gallery)
    assert out.splitlines() == ["astronaut\t1 face", "p0\t2 faces", "p1\t2 faces", "p2\t2 faces",
                                "p3\t2 faces"]
    code, out, _ = run(capsys, "gallery", "list", gallery, "--identity", "p1")
    assert len(out.splitlines()) == 2 and out.startswith("3\tp1\t")      # astronaut/ came first
    code, out, _ = run(capsys, "gallery", "list", gallery, "--faces", "--json")
    assert [r["identity"] for r in json.loads(out)][:3] == ["astronaut", "p0", "p0"]
    code, out, _ = run(capsys, "gallery", "list", gallery, "--log")
    assert [line.split(": ")[1] for line in out.splitlines()] == ["unreadable", "no face"]


def test_search_prints_the_best_identities(gallery, capsys):
    code, out, err = run(capsys, "search", EXAMPLES / "astronaut_variant.jpg", CROPS / "2_fn_0_aligned.jpg",
                         "--gallery", gallery, "--top-k", "2")
    assert code == 0 and err == ""
    first, second = out.splitlines()
    assert first.startswith(f"{EXAMPLES / 'astronaut_variant.jpg'}, face 1 of 1 (box ")
    assert first.split("): ")[1].startswith("astronaut 0.9")
    assert second.split("): ")[1].startswith("p2 1.000")


def test_search_json_and_unknown(gallery, capsys):
    code, out, _ = run(capsys, "search", CROPS / "3_fn_0_aligned.jpg", "--gallery", gallery,
                       "--aligned", "--json", "--threshold", "1.5")
    assert code == 0
    (record,) = json.loads(out)
    (face,) = record["faces"]
    assert face["known"] is False and face["matches"] == [] and face["box"] is None
    assert face["nearest"]["identity"] == "p3" and face["nearest"]["similarity"] > 0.95  # re-aligned in the gallery
    code, out, _ = run(capsys, "search", CROPS / "3_fn_0_aligned.jpg", "--gallery", gallery,
                       "--aligned", "--threshold", "1.5")
    assert "0_aligned.jpg: unknown (nearest: p3 0.9" in out


def test_search_a_photo_without_a_face_exits_3(gallery, photos, capsys):
    code, out, err = run(capsys, "search", photos / "nobody" / "grey.png", "--gallery", gallery)
    assert code == 3 and out.strip().endswith("grey.png: no face found")
    assert err.strip() == f"tinyface: no face found in {photos / 'nobody' / 'grey.png'}"


def test_remove_then_list(photos, tmp_path, capsys):
    g = tmp_path / "g.db"
    run(capsys, "index", photos / "p0", photos / "p1", "--gallery", g, "--aligned", "--quiet")
    code, out, _ = run(capsys, "gallery", "remove", g, "--identity", "p0", "--id", "3")
    assert code == 0 and out.strip() == "removed 3 faces"
    code, out, _ = run(capsys, "gallery", "list", g)
    assert out.splitlines() == ["p1\t1 face"]
    code, out, err = run(capsys, "index", photos / "p0", "--gallery", g, "--aligned")
    assert "2 faces added" in err                               # removed files come back


@pytest.mark.parametrize("argv, message", [
    (["search", "x.jpg", "--gallery", "/nowhere/g.db"], "no gallery there"),
    (["index", "PHOTOS", "--gallery", "/nowhere/g.db"], "does not exist"),
    (["gallery", "info", "missing.db"], "no gallery there"),
    (["gallery", "remove", "G"], "say what to remove"),
    (["search", "x.jpg", "--gallery", "G", "--top-k", "0"], "--top-k must be at least 1"),
    (["index", "PHOTOS", "--gallery", "G", "--identity-from", "name"], "'folder' or 'csv:FILE'"),
    (["index", "PHOTOS", "--gallery", "G", "--identity-from", "csv:missing.csv"], "cannot read identities"),
    (["index", "missing-folder", "--gallery", "new.db"], "no such file or folder"),
])
def test_errors_are_one_line(tmp_path, gallery, photos, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [str(gallery) if a == "G" else str(photos) if a == "PHOTOS" else a for a in argv]
    code, out, err = run(capsys, *argv)
    assert_one_line_error(code, out, err)
    assert message in err
    assert not (tmp_path / "new.db").exists()


def test_another_model_is_one_line(gallery, capsys):
    code, out, err = run(capsys, "search", CROPS / "0_fn_0_aligned.jpg", "--gallery", gallery,
                         "--aligned", "--model", OPSET10)
    assert_one_line_error(code, out, err)
    assert "was made with model mobilefacenet-relu6-opset18.onnx" in err


def test_an_int8_gallery_is_its_own_model(gallery, photos, tmp_path, capsys):
    """--int8 indexes and searches with the bundled 8-bit model, whose fingerprint is not the
    fp32 model's: faces of one never go into a gallery of the other."""
    g = tmp_path / "int8.db"
    code, _, err = run(capsys, "index", photos / "p0", photos / "p1", "--gallery", g, "--aligned", "--int8", "--quiet")
    assert code == 0, err
    code, out, _ = run(capsys, "gallery", "info", g)
    assert "model: mobilefacenet-int8.onnx (fingerprint " in out and "faces: 4 of 2 identities" in out
    crop = next((photos / "p1").iterdir())
    code, out, err = run(capsys, "search", crop, "--gallery", g, "--aligned", "--int8", "--top-k", "1")
    assert code == 0 and out.split(": ")[1].startswith("p1 1.000"), err
    for argv in (["index", photos / "p2", "--gallery", g, "--aligned"],                 # fp32 into int8
                 ["index", photos / "p2", "--gallery", gallery, "--aligned", "--int8"],  # int8 into fp32
                 ["search", crop, "--gallery", g, "--aligned"]):
        code, out, err = run(capsys, *argv)
        assert_one_line_error(code, out, err)
        assert "embeddings of different models cannot be compared" in err
    assert "was made with model mobilefacenet-int8.onnx" in err
    code, out, err = run(capsys, "search", crop, "--gallery", g, "--int8", "--model", OPSET10)
    assert_one_line_error(code, out, err)
    assert "give --model or --int8, not both" in err
