"""A gallery on disk: one SQLite database and one append-only file of vectors.

    gallery = Gallery("people.db")                  # created if missing
    gallery.add(embeddings, ["alice", "bob"])        # one batch, one transaction
    scores, ids = gallery.search(queries, k=5)       # see tinyface.gallery.search
    gallery.identify("photo.jpg")                    # who is in this photo?

Files.  ``PATH`` is an SQLite database in WAL mode (SQLite adds ``PATH-wal``
and ``PATH-shm`` beside it) with the tables

    meta(key, value)       format, uuid, the model's fingerprint, name, dim, input size;
                           slots: how many vector rows are committed; coded: how
                           many rows of the codes file are valid (at most slots)
    batches(id, first_slot, count, crc32, added)     one row per committed batch
    faces(id, batch, identity, path, sha256, face_index, x1, y1, x2, y2,
          landmarks, score, added)                   one row per face; id = its slot
    files(sha256, path, faces, batch, added)         every file indexed, with or without
                                                     a face: what a resumed run skips
    removed(id, removed)                             slots of removed faces
    log(id, time, path, sha256, problem, message)    files that could not be indexed
                                                     (the latest word on each path)

``PATH-vectors`` (:mod:`tinyface.gallery.vectors`) is a header and then float32
rows of ``dim`` values, row ``i`` the unit-norm embedding of face ``i``: search
memory-maps it.  Each batch records the CRC-32 of its rows.  ``PATH-codes`` holds
their int8 codes (:mod:`tinyface.kernels.codes`), which search scans first: derived
data, rebuilt from the vectors where it is missing or short.

Crash safety.  A batch is added under SQLite's write lock (``BEGIN
IMMEDIATE``): its vectors are written after the committed rows, the file is
cut just after them and fsynced, then the batch's rows and the new slot count
are committed in one transaction (``synchronous=FULL``).  A process killed
before the commit leaves at most an uncommitted tail after the committed rows,
which no reader maps and the next batch overwrites; killed after it, the
batch is whole.  Committed rows are never written again (removing a face
deletes its row and records its slot in ``removed``), so readers need no lock
on the vectors: they map exactly ``slots`` rows of a snapshot.

The codes follow the same protocol: written after the vectors, before the
commit, from row ``coded`` on (first the codes of committed rows the file
lacks, read back from the vectors file, then the batch's), cut and fsynced,
and ``coded`` set in the same transaction.  Rows below ``coded`` are never
written again, so a reader maps ``coded`` rows of a snapshot.  A gallery made
before the codes, or extended by a tinyface that does not write them, has
``coded`` below ``slots``: the next batch, or a search that finds the write
lock free, codes the rest (one pass over the vectors).
"""
import datetime
import itertools
import json
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Optional

import numpy as np

from tinyface.errors import GalleryError, TinyfaceError
from tinyface.gallery.fingerprint import model_card
from tinyface.gallery.vectors import CODES, append_rows, map_rows, rows_on_disk, write_rows
from tinyface.kernels.codes import encode

FORMAT = "1"
BUSY_SECONDS = 60            # how long a writer waits for another's write lock
ENCODE_ROWS = 1 << 16        # vector rows read back at a time to code them

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, first_slot INTEGER NOT NULL, count INTEGER NOT NULL,
    crc32 INTEGER NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS faces (
    id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, identity TEXT NOT NULL,
    path TEXT, sha256 TEXT, face_index INTEGER NOT NULL DEFAULT 0,
    x1 REAL, y1 REAL, x2 REAL, y2 REAL, landmarks TEXT, score REAL, added REAL NOT NULL);
CREATE INDEX IF NOT EXISTS faces_identity ON faces(identity);
CREATE INDEX IF NOT EXISTS faces_path ON faces(path);
CREATE UNIQUE INDEX IF NOT EXISTS faces_source ON faces(sha256, face_index);
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT PRIMARY KEY, path TEXT NOT NULL, faces INTEGER NOT NULL,
    batch INTEGER NOT NULL, added REAL NOT NULL);
CREATE TABLE IF NOT EXISTS removed (id INTEGER PRIMARY KEY, removed REAL NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    id INTEGER PRIMARY KEY, time REAL NOT NULL, path TEXT NOT NULL, sha256 TEXT,
    problem TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_path ON log(path);
"""


class FaceRecord(NamedTuple):
    """Where a face to add comes from (everything but its embedding)."""
    identity: str
    path: Optional[str] = None
    sha256: Optional[str] = None
    face_index: int = 0
    box: Optional[tuple] = None             # (x1, y1, x2, y2) pixels, as tinyface.detect gives
    landmarks: Optional[np.ndarray] = None  # 5 x 2 (x, y)
    score: Optional[float] = None           # detector score


class FileRecord(NamedTuple):
    """A file that went through indexing, with the number of faces it gave (maybe 0)."""
    sha256: str
    path: str
    faces: int


class Problem(NamedTuple):
    """A file that could not be indexed, for the gallery's log."""
    path: str
    sha256: Optional[str]
    problem: str            # "unreadable", "no face", "no identity", ...
    message: str


class StoredFace(NamedTuple):
    """A face row as the gallery holds it."""
    id: int
    identity: str
    path: Optional[str]
    sha256: Optional[str]
    face_index: int
    box: Optional[tuple]
    landmarks: Optional[list]
    score: Optional[float]
    added: float


@dataclass
class Counts:
    faces: int
    identities: int
    files: int
    batches: int
    removed: int
    problems: int
    slots: int


class Gallery:
    """A face gallery at ``path`` (an SQLite file) bound to one embedding model.

    ``model``: a loaded :class:`~tinyface.face.model.FaceModel`, a path to an
    ONNX file, or None for the bundled MobileFaceNet.  It is read only when
    needed: to add or search (its fingerprint must be the gallery's; an empty
    gallery takes the fingerprint of the first model that adds to it) and to
    embed photos (:meth:`identify`, indexing).  ``create=False`` refuses a
    path where there is no gallery yet.
    """

    def __init__(self, path, model=None, *, create=True):
        self.path = Path(path)
        self.vectors_path = Path(f"{self.path}-vectors")
        self.codes_path = Path(f"{self.path}-codes")
        self._model = model
        self._card = None
        self._vectors = None           # (slots, memmap) cached for search
        self._codes = None             # (coded, memmap) cached for search
        if self.path.is_dir():
            raise GalleryError(f"{self.path}: is a directory, not a gallery file")
        if not create and not self.path.exists():
            raise GalleryError(f"{self.path}: no gallery there (create one with `tinyface index`)")
        if not self.path.parent.is_dir():
            raise GalleryError(f"{self.path}: folder {self.path.parent} does not exist")
        try:
            self.db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise GalleryError(f"{self.path}: cannot open the gallery ({exc})") from None
        try:
            self._open()
        except BaseException:
            self.db.close()
            raise

    def _open(self):
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._create_schema()
        except sqlite3.OperationalError as exc:
            raise GalleryError(f"{self.path}: cannot open the gallery ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path}: not a tinyface gallery ({exc})") from None
        meta = self.meta()
        if meta.get("format") != FORMAT:
            raise GalleryError(f"{self.path}: gallery format {meta.get('format')!r} is not "
                               f"this tinyface's ({FORMAT})")

    def _create_schema(self):
        db = self.db
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" in tables:
            return
        if tables:
            raise GalleryError(f"{self.path}: an SQLite database, but not a tinyface gallery")
        with self._write():
            for statement in SCHEMA.split(";"):
                db.execute(statement)
            db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)", [
                ("format", FORMAT), ("uuid", uuid.uuid4().hex), ("slots", "0"),
                ("created", datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))])

    # ------------------------------------------------------------ basics

    def close(self):
        self._vectors = self._codes = None
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"Gallery({str(self.path)!r})"

    def meta(self) -> dict:
        try:
            return dict(self.db.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{self.path}: not a tinyface gallery ({exc})") from None

    @property
    def dim(self) -> Optional[int]:
        """The embedding size, once a model has added to the gallery."""
        value = self.meta().get("dim")
        return int(value) if value else None

    def __len__(self):
        return self.db.execute("SELECT COUNT(*) FROM faces").fetchone()[0]

    # ------------------------------------------------------------ the model

    @property
    def model_given(self):
        """The model as given (a path, or None for the bundled one) until :attr:`model`
        loads it, then the loaded Model."""
        return self._model

    @property
    def model(self):
        """The bound model, loaded now if it was given as a path or None."""
        from tinyface.face.model import FaceModel
        if not isinstance(self._model, FaceModel):
            self._model = FaceModel.load(self._model)
        return self._model

    @property
    def card(self):
        """The bound model's :class:`~tinyface.gallery.fingerprint.ModelCard`."""
        if self._card is None:
            self._card = model_card(self._model)
        return self._card

    def check_model(self, card=None):
        """Raise :class:`GalleryError` unless ``card`` (default: the bound model's) is the
        model this gallery was filled with (any model suits an empty gallery)."""
        card = self.card if card is None else card
        meta = self.meta()
        if "fingerprint" in meta and meta["fingerprint"] != card.fingerprint:
            raise GalleryError(
                f"{self.path} was made with model {meta['model']} (fingerprint "
                f"{meta['fingerprint'][:12]}, {meta['dim']}-d), not {card.name} (fingerprint "
                f"{card.fingerprint[:12]}, {card.dim}-d): embeddings of different models "
                f"cannot be compared; use the gallery's model or index into a new gallery")

    # ------------------------------------------------------------ writing

    def add(self, embeddings, identities, *, paths=None, sha256=None, face_index=None,
            boxes=None, landmarks=None, scores=None) -> list[int]:
        """Add N faces in one batch (one transaction); returns their ids.

        ``embeddings``: N x D from the gallery's model (stored unit-norm);
        ``identities``: N names (or one name for all).  The optional per-face
        lists record where each face came from; a (sha256, face_index) pair
        can be added once only.
        """
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim == 1:
            emb = emb[None]
        n = len(emb)
        identities = [identities] * n if isinstance(identities, str) else list(identities)

        def column(values, default):
            values = [default] * n if values is None else list(values)
            if len(values) != n:
                raise GalleryError(f"{n} embeddings but {len(values)} values in a per-face list")
            return values
        records = [FaceRecord(*fields) for fields in zip(
            column(identities, None), column(paths, None), column(sha256, None),
            column(face_index, 0), column(boxes, None), column(landmarks, None),
            column(scores, None))]
        return self.commit(records, emb)

    def commit(self, faces, embeddings, files=(), problems=(), card=None) -> list[int]:
        """Add one batch in one transaction: ``faces`` (FaceRecord) with their
        ``embeddings`` (n x D), the ``files`` (FileRecord) they came from, and
        ``problems`` for the log.  Files whose sha256 the gallery already holds
        are dropped with their faces (a resumed or repeated run adds nothing
        twice).  ``card``: the model that made the embeddings (default: the
        bound model).  Returns the new faces' ids."""
        card = self.card if card is None else card
        faces, files, problems = list(faces), list(files), list(problems)
        emb = _unit_rows(embeddings, len(faces), card.dim)
        for f in faces:
            if not isinstance(f.identity, str) or not f.identity.strip():
                raise GalleryError(f"a face's identity must be a non-empty string, got {f.identity!r}")
        now = time.time()
        with self._write():
            self.check_model(card)
            done = self._already_indexed({f.sha256 for f in files})
            if done:
                keep = [i for i, f in enumerate(faces) if f.sha256 not in done]
                faces, emb = [faces[i] for i in keep], emb[keep]
                files = [f for f in files if f.sha256 not in done]
            if not faces and not files and not problems:
                return []
            meta = self.meta()
            if "fingerprint" not in meta:
                self._record_model(card)
            slots = int(meta["slots"])
            crc = append_rows(self.vectors_path, meta["uuid"], card.dim, slots, emb) if len(emb) else 0
            coded = self._write_codes(meta, card.dim, slots, emb)
            db = self.db
            batch = db.execute("INSERT INTO batches (first_slot, count, crc32, added) VALUES (?, ?, ?, ?)",
                               (slots, len(faces), crc, now)).lastrowid
            ids = list(range(slots, slots + len(faces)))
            try:
                db.executemany(
                    "INSERT INTO faces VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(i, batch, f.identity, f.path, f.sha256, int(f.face_index), *_box(f.box),
                      _landmarks(f.landmarks), None if f.score is None else float(f.score), now)
                     for i, f in zip(ids, faces)])
                db.executemany("INSERT INTO files VALUES (?, ?, ?, ?, ?)",
                               [(f.sha256, f.path, f.faces, batch, now) for f in files])
            except sqlite3.IntegrityError:
                raise GalleryError("this batch adds a face or a file (by sha256 and face index) "
                                   "that the gallery, or the batch itself, already holds") from None
            # the log keeps the latest word on each path
            db.executemany("DELETE FROM log WHERE path = ?",
                           [(p,) for p in {f.path for f in files} | {p.path for p in problems}])
            db.executemany("INSERT INTO log (time, path, sha256, problem, message) VALUES (?, ?, ?, ?, ?)",
                           [(now, p.path, p.sha256, p.problem, p.message) for p in problems])
            db.execute("UPDATE meta SET value = ? WHERE key = 'slots'", (str(slots + len(faces)),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('coded', ?)", (str(coded),))
        return ids

    def _write_codes(self, meta, dim, slots, rows) -> int:
        """Under the write lock, ``rows`` being the vector rows just written at ``slots``:
        write the codes of the committed rows the codes file lacks (read back from the
        vectors file; all of them if the file is missing or not whole) and of ``rows``,
        cut and fsync the file; returns the rows it then holds (``coded`` to commit)."""
        uuid_hex = meta["uuid"]
        coded = min(int(meta.get("coded", 0)), slots)
        if coded:
            try:
                if rows_on_disk(self.codes_path, uuid_hex, dim, CODES) < coded:
                    coded = 0
            except GalleryError:
                coded = 0
        if coded == slots and not len(rows):
            return coded
        vectors = map_rows(self.vectors_path, uuid_hex, dim, slots) if coded < slots else None
        lacking = (encode(vectors[i:i + ENCODE_ROWS]) for i in range(coded, slots, ENCODE_ROWS))
        write_rows(self.codes_path, uuid_hex, dim, coded, itertools.chain(lacking, [encode(rows)]), CODES)
        return slots + len(rows)

    def remove(self, ids=(), identities=(), paths=()) -> int:
        """Remove faces by id, by identity, or by source path (a file, or everything under
        a folder); one transaction.  Files left with no face are forgotten, so indexing
        them again adds them back.  Returns how many faces were removed."""
        where, args = [], []
        for i in ids:
            where.append("id = ?")
            args.append(int(i))
        for name in identities:
            where.append("identity = ?")
            args.append(name)
        for p in paths:
            p = os.path.abspath(p)
            where.append("(path = ? OR substr(path, 1, ?) = ?)")
            args += [p, len(p) + 1, p.rstrip(os.sep) + os.sep]
        if not where:
            return 0
        with self._write():
            db = self.db
            cond = " OR ".join(where)
            rows = db.execute(f"SELECT id, sha256 FROM faces WHERE {cond}", args).fetchall()
            now = time.time()
            db.executemany("INSERT INTO removed VALUES (?, ?)", [(i, now) for i, _ in rows])
            db.executemany("DELETE FROM faces WHERE id = ?", [(i,) for i, _ in rows])
            db.executemany("DELETE FROM files WHERE sha256 = ? AND NOT EXISTS "
                           "(SELECT 1 FROM faces WHERE faces.sha256 = files.sha256)",
                           [(s,) for s in {s for _, s in rows if s is not None}])
        return len(rows)

    def _write(self):
        """A write transaction under SQLite's write lock (BEGIN IMMEDIATE)."""
        return _Transaction(self.db)

    def _already_indexed(self, sha256s) -> set:
        """Those of ``sha256s`` that the gallery's files table holds."""
        found, sha256s = set(), [s for s in sha256s if s is not None]
        for start in range(0, len(sha256s), 500):
            part = sha256s[start:start + 500]
            found.update(s for (s,) in self.db.execute(
                f"SELECT sha256 FROM files WHERE sha256 IN ({','.join('?' * len(part))})", part))
        return found

    def indexed(self, sha256s) -> set:
        """Those of ``sha256s`` already indexed into this gallery (for resuming)."""
        return self._already_indexed(set(sha256s))

    def _record_model(self, card):
        self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
            ("fingerprint", card.fingerprint), ("model", card.name), ("dim", str(card.dim)),
            ("input_size", "x".join(str(v) for v in card.input_size))])

    # ------------------------------------------------------------ reading

    def counts(self) -> Counts:
        one = lambda sql: self.db.execute(sql).fetchone()[0]   # noqa: E731
        return Counts(faces=one("SELECT COUNT(*) FROM faces"),
                      identities=one("SELECT COUNT(DISTINCT identity) FROM faces"),
                      files=one("SELECT COUNT(*) FROM files"),
                      batches=one("SELECT COUNT(*) FROM batches"),
                      removed=one("SELECT COUNT(*) FROM removed"),
                      problems=one("SELECT COUNT(*) FROM log"),
                      slots=int(self.meta()["slots"]))

    def identities(self) -> list[tuple[str, int]]:
        """(identity, number of faces), by identity."""
        return self.db.execute("SELECT identity, COUNT(*) FROM faces GROUP BY identity "
                                "ORDER BY identity").fetchall()

    def faces(self, identity=None, ids=None) -> list[StoredFace]:
        """The face rows, by id: all, those of one identity, or those with these ids."""
        sql = "SELECT id, identity, path, sha256, face_index, x1, y1, x2, y2, landmarks, score, added FROM faces"
        if ids is not None:
            ids = [int(i) for i in ids]
            rows = []
            for start in range(0, len(ids), 500):
                part = ids[start:start + 500]
                rows += self.db.execute(f"{sql} WHERE id IN ({','.join('?' * len(part))})", part).fetchall()
            rows.sort()
        elif identity is not None:
            rows = self.db.execute(f"{sql} WHERE identity = ? ORDER BY id", (identity,)).fetchall()
        else:
            rows = self.db.execute(f"{sql} ORDER BY id").fetchall()
        return [StoredFace(r[0], r[1], r[2], r[3], r[4], None if r[5] is None else tuple(r[5:9]),
                           None if r[9] is None else json.loads(r[9]), r[10], r[11]) for r in rows]

    def files(self) -> list[tuple]:
        """(sha256, path, faces, batch) of every file indexed, in the order they were added."""
        return self.db.execute("SELECT sha256, path, faces, batch FROM files ORDER BY rowid").fetchall()

    def problems(self) -> list[Problem]:
        """The log: files that could not be indexed, oldest first."""
        return [Problem(*r) for r in self.db.execute(
            "SELECT path, sha256, problem, message FROM log ORDER BY id")]

    def vectors(self):
        """(vectors, live): the committed rows of the vectors file, memory-mapped read-only
        (slots x dim float32), and a uint8 mask of the rows still in the gallery (None when
        none were removed)."""
        with _Snapshot(self.db):
            meta = self.meta()
            slots = int(meta["slots"])
            removed = [i for (i,) in self.db.execute("SELECT id FROM removed")]
        if slots == 0:
            return np.zeros((0, self.dim or 0), np.float32), None
        if self._vectors is None or self._vectors[0] != slots:
            self._vectors = (slots, map_rows(self.vectors_path, meta["uuid"], int(meta["dim"]), slots))
        live = None
        if removed:
            live = np.ones(slots, np.uint8)
            live[removed] = 0
        return self._vectors[1], live

    def codes(self, rows):
        """The int8 codes (:mod:`tinyface.kernels.codes`) of the first ``rows`` vector rows,
        memory-mapped read-only (n x row bytes uint8), or of fewer (n < rows, maybe 0) when
        the codes file covers fewer rows and cannot be extended now (the write lock is
        taken, or the gallery is read-only): search reads the others in float32."""
        with _Snapshot(self.db):
            meta = self.meta()
        want = min(int(rows), int(meta["slots"]))
        coded = self._map_codes(meta)
        if coded < want and self._extend_codes():
            with _Snapshot(self.db):
                coded = self._map_codes(self.meta())
        n = min(coded, want)
        return self._codes[1][:n] if n else None

    def _map_codes(self, meta) -> int:
        """Map the valid rows of the codes file (into ``_codes``); returns how many there are
        (0 if none, or if the file is missing or not whole)."""
        coded = min(int(meta.get("coded", 0)), int(meta["slots"]))
        if coded and (self._codes is None or self._codes[0] != coded):
            try:
                self._codes = (coded, map_rows(self.codes_path, meta["uuid"], int(meta["dim"]), coded, CODES))
            except GalleryError:
                return 0
        return coded

    def _extend_codes(self) -> bool:
        """Code every committed row now, if the write lock is free at once and the gallery
        writable; whether it did."""
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            with self._write():
                meta = self.meta()
                dim = int(meta["dim"])
                coded = self._write_codes(meta, dim, int(meta["slots"]), np.zeros((0, dim), np.float32))
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('coded', ?)", (str(coded),))
            return True
        except (GalleryError, OSError, sqlite3.OperationalError):
            return False
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_SECONDS * 1000}")

    # ------------------------------------------------------------ search and upkeep

    def search(self, embeddings, k=5):
        """(scores, ids), each M x k': the k faces most similar (cosine) to each of M
        query embeddings, best first; see :func:`tinyface.gallery.search.search`."""
        from tinyface.gallery.search import search
        return search(self, embeddings, k)

    def identify(self, photo, k=5, threshold=None, aligned=False, pipeline=None):
        """Who is in ``photo``: per face, the k most similar identities; see
        :func:`tinyface.gallery.search.identify`."""
        from tinyface.gallery.search import identify
        return identify(self, photo, k, threshold, aligned, pipeline)

    def check(self):
        """The integrity check: see :func:`tinyface.gallery.check.check`."""
        from tinyface.gallery.check import check
        return check(self)


class _Transaction:
    """``with``: BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise GalleryError(f"cannot write to the gallery: {exc}") from None

    def __exit__(self, kind, exc, tb):
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")


class _Snapshot(_Transaction):
    """``with``: a read transaction, so that several reads see one committed state."""

    def __enter__(self):
        self.db.execute("BEGIN")

    def __exit__(self, kind, exc, tb):
        self.db.execute("COMMIT")


def _unit_rows(embeddings, n, dim) -> np.ndarray:
    """``embeddings`` as n x dim float32 rows of unit norm, or a GalleryError."""
    emb = np.asarray(embeddings, np.float32)
    if emb.shape != (n, dim):
        raise GalleryError(f"expected {n} embeddings of {dim} values (the model's size), "
                           f"got an array of shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise GalleryError("embeddings hold NaN or infinity")
    norms = np.linalg.norm(emb.astype(np.float64), axis=1, keepdims=True)
    if n and norms.min() == 0:
        raise GalleryError("an embedding is all zeros: it has no direction to compare")
    return (emb / norms).astype(np.float32) if n else emb.reshape(0, dim)


def _box(box):
    if box is None:
        return (None, None, None, None)
    values = tuple(float(v) for v in box)
    if len(values) != 4:
        raise TinyfaceError(f"a box is (x1, y1, x2, y2), got {box!r}")
    return values


def _landmarks(points):
    if points is None:
        return None
    points = np.asarray(points, np.float64)
    if points.shape != (5, 2):
        raise TinyfaceError(f"landmarks are 5 x 2 (x, y), got shape {points.shape}")
    return json.dumps([[round(float(x), 3), round(float(y), 3)] for x, y in points])
