"""gallery.check: a sound gallery passes; each kind of damage is named."""
import sqlite3

import numpy as np
import pytest

from gallery_testing import batch_content, tiny_model
from tinyface.gallery.store import Gallery
from tinyface.gallery.vectors import HEADER_BYTES
from tinyface.kernels.codes import row_bytes


@pytest.fixture
def gallery(tmp_path):
    model = tiny_model(tmp_path / "tiny.onnx")
    with Gallery(tmp_path / "g.db", model) as g:
        for b in range(3):
            g.commit(*batch_content(b))              # 1 + 2 + 3 faces
        g.remove(ids=[1])
        yield g


def sql(gallery, statement):
    db = sqlite3.connect(gallery.path)
    db.execute(statement)
    db.commit()
    db.close()


def failures(gallery):
    report = gallery.check()
    assert not report.ok
    return " | ".join(report.failures)


def test_a_sound_gallery_passes(gallery):
    report = gallery.check()
    assert report.ok and report.notes == []


def test_a_changed_vector_fails_its_batchs_crc(gallery):
    with open(gallery.vectors_path, "r+b") as f:
        f.seek(HEADER_BYTES + 4 * 16 * 4 + 8)          # inside batch 2 (slots 3..5)
        f.write(np.float32(0.5).tobytes())
    assert "batch 3: its 3 vectors do not have the CRC-32" in failures(gallery)


def test_a_short_or_missing_vectors_file_fails(gallery):
    with open(gallery.vectors_path, "r+b") as f:
        f.truncate(HEADER_BYTES + 5 * 16 * 4)
    assert "but 6 rows of 16 floats need" in failures(gallery)
    gallery.vectors_path.unlink()
    assert "the vectors file is missing" in failures(gallery)


def test_another_gallerys_vectors_file_fails(gallery, tmp_path):
    with Gallery(tmp_path / "other.db", tmp_path / "tiny.onnx") as other:
        other.commit(*batch_content(5))
        gallery.vectors_path.write_bytes(other.vectors_path.read_bytes())
    assert "not this gallery's vectors file" in failures(gallery)


def test_rows_that_disagree_fail(gallery):
    sql(gallery, "UPDATE meta SET value = '7' WHERE key = 'slots'")
    assert "the batches hold 6 slots, the gallery says 7" in failures(gallery)


def test_a_lost_batch_record_fails(gallery):
    sql(gallery, "DELETE FROM batches WHERE id = 2")
    text = failures(gallery)
    assert "batch 3 holds slots 3..5, but the batches before it end at slot 0" in text
    assert "faces are not in the slot range of their batch" in text
    assert "file records name a batch that does not exist" in text


def test_a_face_both_present_and_removed_fails(gallery):
    sql(gallery, "INSERT INTO removed VALUES (2, 0)")
    text = failures(gallery)
    assert "1 faces are both present and removed" in text and "5 faces + 2 removed != 6 slots" in text


def test_a_face_moved_to_another_batch_fails(gallery):
    sql(gallery, "UPDATE faces SET batch = 2 WHERE id = 3")
    assert "not in the slot range of their batch" in failures(gallery)


def test_a_changed_code_fails(gallery):
    with open(gallery.codes_path, "r+b") as f:
        f.seek(HEADER_BYTES + 4 * row_bytes(16) + 3)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([(byte[0] + 1) % 256]))
    assert "row 4 is not the int8 code of its vector" in failures(gallery)


def test_more_rows_coded_than_committed_fails(gallery):
    sql(gallery, "UPDATE meta SET value = '99' WHERE key = 'coded'")
    assert "99 rows are coded, but only 6" in failures(gallery)
