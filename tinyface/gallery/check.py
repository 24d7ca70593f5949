"""The gallery's integrity check: does the database agree with itself and with the vectors file?

Checked, each failure one line naming what is wrong:

* SQLite's own ``PRAGMA integrity_check``;
* the batches tile the slots: each starts where the one before ended, and
  their counts add up to the committed ``slots``;
* every slot is either a face or removed, never both, and every face lies in
  its batch's range;
* every file's record names a batch, and the faces from an indexed file came
  in that same batch;
* the vectors file: the right header, at least ``slots`` rows, each batch's
  rows with the CRC-32 the batch recorded, every live row finite and of unit
  norm;
* the int8 codes: ``coded`` at most ``slots``, and each of the first
  ``coded`` rows of the codes file the code of its vector row.

Bytes after the committed rows are an interrupted batch: reported as a note,
not a failure (the next batch overwrites them).  So are codes that cover
fewer rows than the vectors, or a codes file that is missing or not whole:
derived data, which the next batch or search rebuilds from the vectors.
"""
import zlib
from dataclasses import dataclass, field

import numpy as np

from tinyface.errors import GalleryError
from tinyface.gallery.vectors import CODES, HEADER_BYTES, check_header, map_rows, rows_on_disk
from tinyface.kernels.codes import encode

NORM_TOLERANCE = 1e-3
CHUNK_ROWS = 1 << 16


@dataclass
class CheckReport:
    failures: list = field(default_factory=list)   # what is wrong, one line each
    notes: list = field(default_factory=list)      # worth knowing, not wrong

    @property
    def ok(self) -> bool:
        return not self.failures


def check(gallery) -> CheckReport:
    """Run every check on ``gallery`` (read-only) and report."""
    report = CheckReport()
    db = gallery.db
    db.execute("BEGIN")
    try:
        result = [r for (r,) in db.execute("PRAGMA integrity_check")]
        if result != ["ok"]:
            report.failures += [f"SQLite: {r}" for r in result]
            return report
        meta = gallery.meta()
        slots = int(meta["slots"])
        _check_batches(db, slots, report)
        _check_slots(db, slots, report)
        _check_files(db, report)
        if slots or gallery.vectors_path.exists():
            if _check_vectors(gallery, db, meta, slots, report):
                _check_codes(gallery, meta, slots, report)
    finally:
        db.execute("COMMIT")
    return report


def _check_batches(db, slots, report):
    end = 0
    for batch, first, count in db.execute("SELECT id, first_slot, count FROM batches ORDER BY id"):
        if first != end or count < 0:
            report.failures.append(f"batch {batch} holds slots {first}..{first + count - 1}, "
                                   f"but the batches before it end at slot {end - 1}")
        end = first + count
    if end != slots:
        report.failures.append(f"the batches hold {end} slots, the gallery says {slots}")


def _check_slots(db, slots, report):
    one = lambda sql: db.execute(sql).fetchone()[0]   # noqa: E731
    outside = one(f"SELECT COUNT(*) FROM faces WHERE id < 0 OR id >= {slots}") \
        + one(f"SELECT COUNT(*) FROM removed WHERE id < 0 OR id >= {slots}")
    if outside:
        report.failures.append(f"{outside} face or removed ids outside the {slots} committed slots")
    both = one("SELECT COUNT(*) FROM faces JOIN removed USING (id)")
    if both:
        report.failures.append(f"{both} faces are both present and removed")
    faces, removed = one("SELECT COUNT(*) FROM faces"), one("SELECT COUNT(*) FROM removed")
    if faces + removed != slots:
        report.failures.append(f"{faces} faces + {removed} removed != {slots} slots")
    stray = one("SELECT COUNT(*) FROM faces LEFT JOIN batches ON faces.batch = batches.id "
                "WHERE batches.id IS NULL OR faces.id < batches.first_slot "
                "OR faces.id >= batches.first_slot + batches.count")
    if stray:
        report.failures.append(f"{stray} faces are not in the slot range of their batch")


def _check_files(db, report):
    stray = db.execute("SELECT COUNT(*) FROM files LEFT JOIN batches ON files.batch = batches.id "
                       "WHERE batches.id IS NULL").fetchone()[0]
    if stray:
        report.failures.append(f"{stray} file records name a batch that does not exist")
    apart = db.execute("SELECT COUNT(*) FROM faces JOIN files USING (sha256) "
                       "WHERE files.batch != faces.batch").fetchone()[0]
    if apart:
        report.failures.append(f"{apart} faces were not committed with their file's record")


def _check_vectors(gallery, db, meta, slots, report) -> bool:
    """Check the vectors file; whether it holds the committed rows under its header."""
    path = gallery.vectors_path
    if "dim" not in meta:
        report.notes.append(f"{path} exists but no batch was committed: an interrupted first batch")
        return False
    dim = int(meta["dim"])
    try:
        with open(path, "rb") as f:
            check_header(f.read(HEADER_BYTES), meta["uuid"], dim, path)
    except FileNotFoundError:
        report.failures.append(f"{path}: the vectors file is missing")
        return False
    except GalleryError as exc:
        report.failures.append(str(exc))
        return False
    size = path.stat().st_size
    need = HEADER_BYTES + slots * dim * 4
    if size < need:
        report.failures.append(f"{path}: {size} bytes, but {slots} rows of {dim} floats need {need}")
        return False
    if size > need:
        report.notes.append(f"{path}: {size - need} bytes after the committed rows (an interrupted "
                            f"batch; the next one overwrites them)")
    if slots == 0:
        return True
    vectors = map_rows(path, meta["uuid"], dim, slots)
    live = np.ones(slots, bool)
    live[[i for (i,) in db.execute("SELECT id FROM removed")]] = False
    bad_norm = 0
    for batch, first, count, crc in db.execute("SELECT id, first_slot, count, crc32 FROM batches ORDER BY id"):
        value = 0
        for start in range(first, first + count, CHUNK_ROWS):
            rows = np.asarray(vectors[start:min(first + count, start + CHUNK_ROWS)])
            value = zlib.crc32(rows.tobytes(), value)
            norms = np.linalg.norm(rows.astype(np.float64), axis=1)
            ok = np.isfinite(norms) & (np.abs(norms - 1) <= NORM_TOLERANCE)
            bad_norm += int((~ok & live[start:start + len(rows)]).sum())
        if value != crc:
            report.failures.append(f"batch {batch}: its {count} vectors do not have the CRC-32 "
                                   f"recorded at commit (damaged vectors file)")
    if bad_norm:
        report.failures.append(f"{bad_norm} live vectors are not finite unit vectors")
    return True


def _check_codes(gallery, meta, slots, report):
    path, dim = gallery.codes_path, int(meta["dim"])
    coded = int(meta.get("coded", 0))
    if coded > slots:
        report.failures.append(f"the gallery says {coded} rows are coded, but only {slots} are committed")
        return
    rebuilt = "derived data: the next batch or search rebuilds it from the vectors"
    try:
        on_disk = rows_on_disk(path, meta["uuid"], dim, CODES)
    except GalleryError as exc:
        if coded or path.exists():
            report.notes.append(f"{exc} ({rebuilt})")
        elif slots:
            report.notes.append(f"no int8 codes yet (a gallery from before them): the next batch "
                                f"or search codes its {slots} rows")
        return
    if on_disk < coded:
        report.notes.append(f"{path}: {on_disk} rows, but {coded} were coded ({rebuilt})")
        return
    if coded < slots:
        report.notes.append(f"the int8 codes cover {coded} of the {slots} rows (the rest were added "
                            f"without them): the next batch or search codes the rest")
    if on_disk > coded:
        report.notes.append(f"{path}: {on_disk - coded} rows after the coded ones (an interrupted "
                            f"batch; the next one overwrites them)")
    if coded == 0:
        return
    vectors = map_rows(gallery.vectors_path, meta["uuid"], dim, coded)
    codes = map_rows(path, meta["uuid"], dim, coded, CODES)
    for start in range(0, coded, CHUNK_ROWS):
        stop = min(coded, start + CHUNK_ROWS)
        differ = np.flatnonzero((encode(np.asarray(vectors[start:stop])) != codes[start:stop]).any(axis=1))
        if len(differ):
            report.failures.append(f"{path}: row {start + differ[0]} is not the int8 code of its vector "
                                   f"(damaged codes file; delete it and the next search rebuilds it)")
            return
