"""Lists of labelled face pairs: LFW's own files and plain CSV.

**LFW format**, exactly as LFW distributes it.  The first line is a header:
``N`` (View 1: ``pairsDevTrain.txt`` has 1100, ``pairsDevTest.txt`` 500) or
``S N`` (View 2: ``pairs.txt`` has ``10 300``).  Then come S sets, each of N
same-person lines ``name i j`` followed by N different-person lines
``name1 i name2 j`` (fields separated by tabs or spaces).  Image ``i`` of
``name`` is ``<root>/<name>/<name>_<iiii>.jpg`` (``i`` zero-padded to four
digits), LFW's own layout.  The S sets are the folds of View 2's protocol.

**CSV**: one pair per row, ``path_a,path_b,same``, paths relative to the
root (or absolute); ``same`` is 1/0, true/false or yes/no.  A first row
whose third field is not one of those (e.g. ``path_a,path_b,same``) is a
header and skipped.

``root`` defaults to the folder that holds the pair file.
"""
import csv
from pathlib import Path
from typing import NamedTuple

from tinyface.errors import PairsError

FORMATS = ("lfw", "csv")
SAME_WORDS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


class Pair(NamedTuple):
    a: str          # path of the first image
    b: str          # path of the second image
    same: bool      # True: one person
    set: int        # LFW's set (View 2's fold) this pair belongs to; 0 when there is one set


class PairList(NamedTuple):
    pairs: list
    sets: int               # LFW sets in the file (10 for View 2); 1 for View 1 and CSV
    description: str        # e.g. "pairsDevTest.txt (LFW format, 500 same + 500 different)"

    @property
    def images(self) -> list:
        """Every image the pairs name, once each, in order of first appearance."""
        return list(dict.fromkeys(p for pair in self.pairs for p in (pair.a, pair.b)))


def read_pairs(path, root=None, format=None) -> PairList:
    """Read a pair list; ``format`` is 'lfw' or 'csv' (default: 'csv' for a .csv file, else 'lfw')."""
    path = Path(path)
    if format is None:
        format = "csv" if path.suffix.lower() == ".csv" else "lfw"
    if format not in FORMATS:
        raise PairsError(f"unknown pair format {format!r}: choose one of {', '.join(FORMATS)}")
    root = path.parent if root is None else Path(root)
    if not root.is_dir():
        raise PairsError(f"image root '{root}' is not a folder")
    try:
        text = path.read_text()
    except OSError as exc:
        raise PairsError(f"cannot read pair file '{path}': {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PairsError(f"'{path}' is not a text file") from None
    pairs, sets = (read_lfw(text, path.name, root) if format == "lfw"
                   else (read_csv(text, path.name, root), 1))
    return PairList(pairs, sets, describe(path.name, format, pairs, sets))


def describe(name, format, pairs, sets) -> str:
    same = sum(p.same for p in pairs)
    counts = f"{same} same + {len(pairs) - same} different"
    if format == "csv":
        return f"{name} (CSV, {counts})"
    per_set = f"{same // sets} same + {(len(pairs) - same) // sets} different"
    return f"{name} (LFW format, {counts})" if sets == 1 else \
        f"{name} (LFW format, {sets} sets of {per_set})"


def lfw_image(root: Path, name: str, index: str, where: str) -> str:
    if not index.isdigit() or int(index) < 1:
        raise PairsError(f"{where}: image number must be a positive integer, got {index!r}")
    return str(root / name / f"{name}_{int(index):04d}.jpg")


def read_lfw(text: str, name: str, root: Path):
    """(pairs, number of sets) from the text of an LFW pair file."""
    lines = text.rstrip().splitlines()
    header = lines[0].split() if lines else []
    if not 1 <= len(header) <= 2 or not all(h.isdigit() and int(h) > 0 for h in header):
        raise PairsError(f"{name}: line 1 must be LFW's header 'N' or 'SETS N' (positive "
                         f"integers), got {lines[0] if lines else ''!r}")
    sets, n = (1, int(header[0])) if len(header) == 1 else (int(header[0]), int(header[1]))
    body = lines[1:]
    if len(body) != 2 * n * sets:
        raise PairsError(f"{name}: the header '{lines[0].strip()}' announces {sets} set(s) of "
                         f"{n} same + {n} different pairs ({2 * n * sets} lines), the file has "
                         f"{len(body)}")
    pairs = []
    for number, line in enumerate(body, start=2):
        position = (number - 2) % (2 * n)
        same = position < n
        fields = line.split()
        where = f"{name}, line {number}"
        if same and len(fields) == 3:
            person, i, j = fields
            a, b = lfw_image(root, person, i, where), lfw_image(root, person, j, where)
        elif not same and len(fields) == 4:
            a, b = lfw_image(root, fields[0], fields[1], where), lfw_image(root, fields[2], fields[3], where)
        else:
            expected = "'name i j' (same person)" if same else "'name1 i name2 j' (different people)"
            raise PairsError(f"{where}: expected {expected}, got {line.strip()!r}")
        pairs.append(Pair(a, b, same, (number - 2) // (2 * n)))
    return pairs, sets


def read_csv(text: str, name: str, root: Path):
    """Pairs from the text of a CSV file ``path_a,path_b,same``."""
    pairs = []
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or all(not field.strip() for field in row):
            continue
        where = f"{name}, line {number}"
        if len(row) != 3:
            raise PairsError(f"{where}: expected 3 fields path_a,path_b,same, got {len(row)}")
        a, b, label = (field.strip() for field in row)
        if label.lower() not in SAME_WORDS:
            if number == 1:
                continue                            # a header row
            raise PairsError(f"{where}: 'same' must be 1/0, true/false or yes/no, got {label!r}")
        if not a or not b:
            raise PairsError(f"{where}: an image path is empty")
        pairs.append(Pair(str(root / a), str(root / b), SAME_WORDS[label.lower()], 0))
    if not pairs:
        raise PairsError(f"{name}: no pairs")
    return pairs
