"""Pair lists: LFW's View 1 and View 2 formats and CSV, and their errors."""
from pathlib import Path

import pytest

from tinyface.errors import PairsError
from tinyface.evaluation.pairs import read_pairs

HARD_PAIRS = Path(__file__).parent / "data" / "lfw-hard-pairs"

VIEW1 = """2
Aaron_Peirsol\t1\t2
Aaron_Peirsol\t3\t4
AJ_Cook\t1\tMarsha_Thomason\t1
Aaron_Sorkin\t2\tFrank_Solich\t5
"""


def view2(sets=3, n=2):
    """A View 2 style file: header 'SETS N', then SETS x (N same + N different) lines."""
    lines = [f"{sets}\t{n}"]
    for s in range(sets):
        lines += [f"Person_{s}_{i}\t1\t{i + 2}" for i in range(n)]
        lines += [f"Person_{s}_{i}\t1\tOther_{s}_{i}\t{i + 10}" for i in range(n)]
    return "\n".join(lines) + "\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_view1_names_lfw_images(tmp_path):
    pl = read_pairs(write(tmp_path, "pairsDevTrain.txt", VIEW1), root=tmp_path)
    assert pl.sets == 1 and len(pl.pairs) == 4
    a, b, same, fold = pl.pairs[0]
    assert a == str(tmp_path / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg")
    assert b == str(tmp_path / "Aaron_Peirsol" / "Aaron_Peirsol_0002.jpg")
    assert same and fold == 0
    a, b, same, _ = pl.pairs[3]
    assert a.endswith("Aaron_Sorkin_0002.jpg") and b.endswith("Frank_Solich/Frank_Solich_0005.jpg")
    assert not same
    assert [p.same for p in pl.pairs] == [True, True, False, False]
    assert pl.description == "pairsDevTrain.txt (LFW format, 2 same + 2 different)"
    assert len(pl.images) == 8


def test_view2_sets_are_folds(tmp_path):
    pl = read_pairs(write(tmp_path, "pairs.txt", view2(3, 2)))
    assert pl.sets == 3 and len(pl.pairs) == 12
    assert [p.set for p in pl.pairs] == [0] * 4 + [1] * 4 + [2] * 4
    assert [p.same for p in pl.pairs[:4]] == [True, True, False, False]
    assert pl.pairs[4].a.endswith("Person_1_0/Person_1_0_0001.jpg")
    assert pl.description == "pairs.txt (LFW format, 3 sets of 2 same + 2 different)"


def test_root_defaults_to_the_pair_files_folder(tmp_path):
    pl = read_pairs(write(tmp_path, "p.txt", VIEW1))
    assert pl.pairs[0].a.startswith(str(tmp_path))


@pytest.mark.parametrize("text, match", [
    ("", "line 1"),
    ("two\n", "line 1"),
    ("0\n", "line 1"),
    ("1 2 3\n", "line 1"),
    ("2\nA\t1\t2\n", "announces 1 set"),
    ("1\nA\t1\t2\nB\t1\t2\n", "line 3: expected 'name1 i name2 j'"),
    ("1\nA\t1\tB\t2\nB\t1\tC\t2\n", "line 2: expected 'name i j'"),
    ("1\nA\t1\tx\nB\t1\tC\t2\n", "line 2: image number"),
    ("1\nA\t0\t2\nB\t1\tC\t2\n", "line 2: image number"),
])
def test_bad_lfw_files(tmp_path, text, match):
    with pytest.raises(PairsError, match=match):
        read_pairs(write(tmp_path, "bad.txt", text))


def test_shipped_csv_with_its_header():
    pl = read_pairs(HARD_PAIRS / "pairs.csv")
    assert pl.sets == 1 and len(pl.pairs) == 49
    assert pl.pairs[0] == (str(HARD_PAIRS / "0_fn_0_aligned.jpg"),
                           str(HARD_PAIRS / "0_fn_1_aligned.jpg"), True, 0)
    assert not pl.pairs[1].same
    assert pl.description.startswith("pairs.csv (CSV, ")
    assert all(Path(p).is_file() for p in pl.images)


def test_csv_words_and_blank_lines(tmp_path):
    text = "path_a,path_b,same\na.jpg,b.jpg,yes\n\nc.jpg, d.jpg ,no\ne.jpg,f.jpg,TRUE\ng.jpg,h.jpg,0\n"
    (tmp_path / "photos").mkdir()
    pl = read_pairs(write(tmp_path, "mine.csv", text), root=tmp_path / "photos")
    assert [p.same for p in pl.pairs] == [True, False, True, False]
    assert pl.pairs[1].b == str(tmp_path / "photos" / "d.jpg")


@pytest.mark.parametrize("text, match", [
    ("a.jpg,b.jpg\n", "line 1: expected 3 fields"),
    ("a,b,same\na.jpg,b.jpg,maybe\n", "line 2: 'same' must be"),
    ("a.jpg,b.jpg,1\na.jpg,b.jpg,same\n", "line 2: 'same' must be"),
    ("a.jpg,,1\n", "image path is empty"),
    ("path_a,path_b,same\n", "no pairs"),
])
def test_bad_csv_files(tmp_path, text, match):
    with pytest.raises(PairsError, match=match):
        read_pairs(write(tmp_path, "bad.csv", text))


def test_missing_file_root_and_format(tmp_path):
    with pytest.raises(PairsError, match="cannot read pair file"):
        read_pairs(tmp_path / "none.txt")
    with pytest.raises(PairsError, match="is not a folder"):
        read_pairs(write(tmp_path, "p.txt", VIEW1), root=tmp_path / "nowhere")
    with pytest.raises(PairsError, match="unknown pair format"):
        read_pairs(write(tmp_path, "p.txt", VIEW1), format="xml")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(PairsError, match="not a text file"):
        read_pairs(tmp_path / "bin.txt")


def test_format_flag_overrides_the_suffix(tmp_path):
    pl = read_pairs(write(tmp_path, "list.txt", "a.jpg,b.jpg,1\n"), format="csv")
    assert len(pl.pairs) == 1
