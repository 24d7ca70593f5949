"""Indexing a photo collection: files -> identities -> detect, align, embed in batches -> gallery.

    report = index(gallery, ["photos/"])               # identities from folder names
    report = index(gallery, ["crops/"], identity_from="csv:labels.csv", aligned=True)

The work goes in three stages, so that the last two can run elsewhere
(:mod:`tinyface.gallery.distributed`):

1. :func:`plan` walks the paths (folders recursively, in sorted order),
   names each file's identity, hashes it (SHA-256) and drops the files the
   gallery already holds; it yields :class:`Work`, ``batch`` files at a time.
2. :func:`embed_batch` reads each file of a batch, detects and aligns its
   faces (or takes it as an aligned crop) and embeds the batch's crops in one
   call; it returns a :class:`Batch`.
3. :meth:`~tinyface.gallery.store.Gallery.commit` adds the batch, its files
   and its problems in one transaction.

So a run that is killed loses at most the batches not yet committed, and the
same command run again skips every file already committed (same SHA-256 for
this gallery, hence this model) and finishes the rest.  A file that cannot be
read, has no face, or has no identity is a :class:`~tinyface.gallery.store.Problem`
in the gallery's log (listed by ``tinyface gallery list G --log``) and the run
goes on; files that were read (with or without a face) are recorded, so they
are not tried again, while files whose bytes could not be read, or that have
no identity, are tried again by the next run.

Memory: one batch of crops and one photo at a time; the walk holds one
folder's listing; nothing grows with the number of files (a CSV of
identities is held in memory).
"""
import csv
import hashlib
import os
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from tinyface.errors import ImageError, TinyfaceError
from tinyface.progress import Progress
from tinyface.gallery.store import FaceRecord, FileRecord, Problem

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
DEFAULT_BATCH = 64      # files per batch: embedded together, committed in one transaction


class Item(NamedTuple):
    """A file to index."""
    path: str               # absolute
    sha256: str
    identity: str


class Work(NamedTuple):
    """One batch of files to index, and the problems met while planning it."""
    items: list
    problems: list
    skipped: int            # files of this stretch already in the gallery


class Batch(NamedTuple):
    """What :func:`embed_batch` returns: everything one commit adds."""
    faces: list             # FaceRecord
    embeddings: np.ndarray  # len(faces) x D float32
    files: list             # FileRecord, one per file read (faces may be 0)
    problems: list          # Problem
    notes: dict             # counts: "several faces", "taken as aligned", "resized", "duplicates"
    card: object            # ModelCard of the model that embedded them


@dataclass
class IndexReport:
    files: int = 0              # files found under the paths
    handled: int = 0            # files looked at so far
    skipped: int = 0            # already in the gallery
    faces: int = 0              # faces added
    problems: dict = field(default_factory=dict)    # kind -> count
    notes: dict = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, work, batch, added):
        self.handled += work.skipped + len(work.items) + len(work.problems)
        self.skipped += work.skipped
        self.faces += added
        for p in work.problems + batch.problems:
            self.problems[p.problem] = self.problems.get(p.problem, 0) + 1
        for kind, n in batch.notes.items():
            self.notes[kind] = self.notes.get(kind, 0) + n


# ------------------------------------------------------------------ stage 1: plan

def check_paths(paths):
    """A :class:`TinyfaceError` naming the first of ``paths`` that does not exist."""
    for p in paths:
        if not os.path.exists(p):
            raise TinyfaceError(f"{os.path.abspath(p)}: no such file or folder")


def image_files(paths):
    """Absolute paths of the files under ``paths``: a file as given, a folder's image
    files (by suffix) recursively, in sorted order.  A path that does not exist is a
    :class:`TinyfaceError` before anything is walked."""
    paths = [os.path.abspath(p) for p in paths]
    check_paths(paths)
    for p in paths:
        if not os.path.isdir(p):
            yield p
            continue
        for folder, subfolders, names in os.walk(p):
            subfolders.sort()
            for name in sorted(names):
                if name.lower().endswith(IMAGE_SUFFIXES):
                    yield os.path.join(folder, name)


def identity_source(spec):
    """``folder`` (the parent folder's name) or ``csv:FILE``: a function path -> identity
    (None when the file has none)."""
    if spec == "folder":
        return lambda path: os.path.basename(os.path.dirname(path))
    if isinstance(spec, str) and spec.startswith("csv:"):
        return read_identity_csv(spec[4:]).get
    raise TinyfaceError(f"identities come from 'folder' or 'csv:FILE', not {spec!r}")


def read_identity_csv(path) -> dict:
    """{absolute path: identity} from a CSV of rows ``path,identity`` (relative paths are
    relative to the CSV's folder; a first row ``path,identity`` is a header)."""
    base = os.path.dirname(os.path.abspath(path))
    table = {}
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, row in enumerate(csv.reader(f), 1):
                if line == 1 and [c.strip().lower() for c in row] == ["path", "identity"]:
                    continue
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != 2 or not row[0].strip() or not row[1].strip():
                    raise TinyfaceError(f"{path}, line {line}: expected 'path,identity', got {row!r}")
                table[os.path.abspath(os.path.join(base, row[0].strip()))] = row[1].strip()
    except OSError as exc:
        raise TinyfaceError(f"cannot read identities from '{path}': {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise TinyfaceError(f"{path}: not a UTF-8 CSV file ({exc})") from None
    return table


def file_sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def plan(gallery, paths, identity_from="folder", batch=DEFAULT_BATCH):
    """:class:`Work` for the files under ``paths`` that ``gallery`` does not hold yet,
    ``batch`` files at a time."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise TinyfaceError(f"batch must be a positive number of files, got {batch!r}")
    identity_of = identity_source(identity_from)
    items, problems, skipped = [], [], 0
    for stretch in _groups(image_files(paths), batch):
        hashed = []
        for p in stretch:
            try:
                hashed.append((p, file_sha256(p)))
            except OSError as exc:
                problems.append(Problem(p, None, "unreadable", f"cannot read: {exc.strerror or exc}"))
        done = gallery.indexed(s for _, s in hashed)
        for p, s in hashed:
            if s in done:
                skipped += 1
            elif identity_of(p) is None:
                problems.append(Problem(p, s, "no identity", "not in the identities CSV"))
            else:
                items.append(Item(p, s, identity_of(p)))
        while len(items) >= batch:
            yield Work(items[:batch], problems, skipped)
            items, problems, skipped = items[batch:], [], 0
    if items or problems or skipped:
        yield Work(items, problems, skipped)


def _groups(iterable, n):
    group = []
    for x in iterable:
        group.append(x)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


def count_files(paths) -> int:
    return sum(1 for _ in image_files(paths))


# ------------------------------------------------------------------ stage 2: embed

def embed_batch(pipeline, items, aligned=False, all_faces=False) -> Batch:
    """Read, detect, align and embed the files of one batch with ``pipeline`` (a
    :class:`~tinyface.face.pipeline.FacePipeline`); nothing here raises for a bad file."""
    from tinyface.face.image import load_rgb, resize_rgb
    from tinyface.gallery.fingerprint import model_card
    faces, crops, files, problems = [], [], [], []
    notes = {"several faces": 0, "taken as aligned": 0, "resized": 0, "duplicates": 0}
    seen = set()
    for item in items:
        if item.sha256 in seen:          # the same bytes as a file before it
            notes["duplicates"] += 1
            continue
        seen.add(item.sha256)
        try:
            if file_sha256(item.path) != item.sha256:
                problems.append(Problem(item.path, None, "changed", "the file changed while "
                                        "being indexed; run again to index it"))
                continue
            rgb = load_rgb(item.path)
        except OSError as exc:
            problems.append(Problem(item.path, None, "unreadable", f"cannot read: {exc.strerror or exc}"))
            continue
        except ImageError as exc:
            problems.append(Problem(item.path, item.sha256, "unreadable", str(exc)))
            files.append(FileRecord(item.sha256, item.path, 0))
            continue
        found = []
        if aligned:
            if rgb.shape[:2] != pipeline.size:
                rgb = resize_rgb(rgb, pipeline.size)
                notes["resized"] += 1
            found = [(None, rgb)]
        else:
            detected = pipeline.detect(rgb)
            if detected:
                notes["several faces"] += len(detected) > 1 and not all_faces
                found = [(f, pipeline.align(rgb, f)) for f in (detected if all_faces else detected[:1])]
            elif rgb.shape[:2] == pipeline.size:
                notes["taken as aligned"] += 1
                found = [(None, rgb)]
            else:
                h, w = rgb.shape[:2]
                problems.append(Problem(item.path, item.sha256, "no face",
                                        f"no face found ({w}x{h} pixels)"))
        for i, (face, crop) in enumerate(found):
            faces.append(FaceRecord(item.identity, item.path, item.sha256, i,
                                    None if face is None else face.box,
                                    None if face is None else face.landmarks,
                                    None if face is None else face.score))
            crops.append(crop)
        files.append(FileRecord(item.sha256, item.path, len(found)))
    model = pipeline.model
    dim = int(model.info.embedding_size)
    embeddings = model.embed(crops) if crops else np.zeros((0, dim), np.float32)
    return Batch(faces, embeddings, files, problems, notes, model_card(model))


def empty_batch(card) -> Batch:
    """A batch of no files (to commit a plan's problems alone)."""
    return Batch([], np.zeros((0, card.dim), np.float32), [], [], {}, card)


# ------------------------------------------------------------------ all three, here

def index(gallery, paths, identity_from="folder", aligned=False, all_faces=False,
          batch=DEFAULT_BATCH, progress=True) -> IndexReport:
    """Index the photos under ``paths`` into ``gallery`` on this machine; see the module.

    ``aligned``: the files are aligned face crops (no detection).  ``all_faces``:
    every face of a photo, not only the largest.  ``progress``: a progress line on
    stderr (see :mod:`tinyface.progress`).
    """
    from tinyface.face.pipeline import FacePipeline
    start = time.monotonic()
    gallery.check_model()
    pipeline = FacePipeline(gallery.model)
    report = IndexReport(files=count_files(paths))
    bar = Progress("indexing", report.files, "files", enabled=progress, plain=True)
    for work in plan(gallery, paths, identity_from, batch):
        result = embed_batch(pipeline, work.items, aligned, all_faces)
        added = commit(gallery, work, result)
        report.add(work, result, len(added))
        bar.update(report.handled, faces=report.faces)
    bar.close()
    report.seconds = time.monotonic() - start
    return report


def commit(gallery, work, batch) -> list[int]:
    """Commit one :class:`Batch` (with its plan's problems) into ``gallery``."""
    return gallery.commit(batch.faces, batch.embeddings, batch.files,
                          work.problems + batch.problems, card=batch.card)

