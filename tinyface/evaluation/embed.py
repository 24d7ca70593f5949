"""Embeddings of many images for an evaluation: once per image, in batches, cached.

Photos go through detection and alignment (the largest face, as ``verify``
does); with ``aligned=True`` images are taken as aligned crops (resized if
they are not the model's input size).  Images that cannot be read or show no
face are recorded as failures, not raised: an evaluation counts them.

The cache (``.npz``) holds, for one model and one set of options (``aligned``,
``flip``, detector options, the model file's SHA-256 and its normalisation):

    paths        U, (M,)      images embedded (absolute paths)
    embeddings   float32, (M, D)
    notes        U, (M,)      '' or e.g. '3 faces, largest used'
    failed       U, (F,)      images that gave no embedding
    reasons      U, (F,)      'unreadable: ...' or 'no face: ...'
    settings     U, ()        the options above, as JSON

It is written every ``SAVE_EVERY`` seconds and when the run ends (also when it
is interrupted), so a long run resumes where it stopped.  A cache made with
other settings is refused.
"""
import hashlib
import json
import os
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from tinyface.errors import ImageError, NoFaceError, TinyfaceError
from tinyface.progress import Progress

BATCH = 64
SAVE_EVERY = 20.0       # seconds between cache writes


class ImageEmbeddings(NamedTuple):
    vectors: dict       # absolute path -> float32 (D,)
    notes: dict         # absolute path -> note ('3 faces, largest used'), for some images
    failed: dict        # absolute path -> reason ('no face: ...' or 'unreadable: ...')


def settings(model, aligned: bool, flip: bool, pipeline) -> dict:
    """What the embeddings depend on, for checking a cache against this run."""
    if model.path is None:
        raise TinyfaceError("a cache needs a model loaded from a file")
    digest = hashlib.sha256(Path(model.path).read_bytes()).hexdigest()
    info = model.info
    detector = None if aligned else {k: v for k, v in pipeline.detector_options.items() if k != "nets"}
    return {"model_sha256": digest, "input_size": list(info.input_size), "mean": list(info.mean),
            "std": list(info.std), "aligned": aligned, "flip": flip, "detector": detector}


def load_cache(path, expected: dict) -> ImageEmbeddings:
    """The cached embeddings in ``path`` (empty when the file does not exist yet)."""
    if not os.path.exists(path):
        return ImageEmbeddings({}, {}, {})
    try:
        with np.load(path, allow_pickle=False) as z:
            found = json.loads(str(z["settings"]))
            vectors = dict(zip(z["paths"].tolist(), z["embeddings"]))
            notes = {p: n for p, n in zip(z["paths"].tolist(), z["notes"].tolist()) if n}
            failed = dict(zip(z["failed"].tolist(), z["reasons"].tolist()))
    except (OSError, ValueError, KeyError) as exc:
        raise TinyfaceError(f"cannot read embedding cache '{path}': {exc}") from None
    if found != json.loads(json.dumps(expected)):
        changed = sorted(k for k in set(found) | set(expected) if found.get(k) != expected.get(k))
        raise TinyfaceError(f"embedding cache '{path}' was made with other settings "
                            f"({', '.join(changed)} differ); remove it or choose another file")
    return ImageEmbeddings(vectors, notes, failed)


def save_cache(path, done: ImageEmbeddings, run_settings: dict):
    """Write the cache atomically (a temporary file, then a rename)."""
    paths = list(done.vectors)
    dim = len(next(iter(done.vectors.values()))) if paths else 0
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, paths=np.array(paths, dtype=str),
                     embeddings=np.array([done.vectors[p] for p in paths], np.float32).reshape(-1, dim),
                     notes=np.array([done.notes.get(p, "") for p in paths], dtype=str),
                     failed=np.array(list(done.failed), dtype=str),
                     reasons=np.array(list(done.failed.values()), dtype=str),
                     settings=np.array(json.dumps(run_settings)))
        os.replace(tmp, path)
    except OSError as exc:
        raise TinyfaceError(f"cannot write embedding cache '{path}': {exc.strerror or exc}") from None


def face_crop(path: str, model, aligned: bool, pipeline):
    """(uint8 crop at the model's input size, note) for one image; raises ImageError/NoFaceError."""
    from tinyface.face.image import load_rgb, resize_rgb
    rgb = load_rgb(path)
    if aligned:
        size = tuple(model.info.input_size)
        if rgb.shape[:2] == size:
            return rgb, ""
        return resize_rgb(rgb, size), f"resized from {rgb.shape[1]}x{rgb.shape[0]}"
    faces = pipeline.detect(rgb)
    if not faces:
        raise NoFaceError(f"none detected in {rgb.shape[1]}x{rgb.shape[0]} pixels")
    note = f"{len(faces)} faces, largest used" if len(faces) > 1 else ""
    return pipeline.align(rgb, faces[0]), note


def embed_images(model, paths, *, aligned: bool, flip: bool = False, pipeline=None,
                 cache=None, batch: int = BATCH, label: str = "embedding") -> ImageEmbeddings:
    """Embed every distinct image of ``paths`` (absolute paths are the keys of the result).

    ``pipeline``: a :class:`~tinyface.face.pipeline.FacePipeline` for photos
    (default: one around ``model`` with the default detector options).
    ``cache``: an ``.npz`` path read before and written during the run.
    Progress goes to stderr when it is a terminal.
    """
    if not aligned and pipeline is None:
        from tinyface.face.pipeline import FacePipeline
        pipeline = FacePipeline(model)
    wanted = list(dict.fromkeys(os.path.abspath(p) for p in paths))
    run_settings = settings(model, aligned, flip, pipeline) if cache else None
    done = load_cache(cache, run_settings) if cache else ImageEmbeddings({}, {}, {})
    todo = [p for p in wanted if p not in done.vectors and p not in done.failed]
    last_save = time.monotonic()
    try:
        with Progress(label, len(todo)) as progress:
            for start in range(0, len(todo), batch):
                names, crops = [], []
                for path in todo[start:start + batch]:
                    try:
                        crop, note = face_crop(path, model, aligned, pipeline)
                    except NoFaceError as exc:
                        done.failed[path] = f"no face: {exc}"
                        continue
                    except ImageError as exc:
                        done.failed[path] = f"unreadable: {exc}"
                        continue
                    names.append(path)
                    crops.append(crop)
                    if note:
                        done.notes[path] = note
                if crops:
                    done.vectors.update(zip(names, model.embed(crops, flip=flip)))
                progress.advance(len(todo[start:start + batch]))
                if cache and time.monotonic() - last_save >= SAVE_EVERY:
                    save_cache(cache, done, run_settings)
                    last_save = time.monotonic()
    finally:
        if cache and todo:
            save_cache(cache, done, run_settings)
    keep = set(wanted)
    return ImageEmbeddings({p: v for p, v in done.vectors.items() if p in keep},
                           {p: n for p, n in done.notes.items() if p in keep},
                           {p: r for p, r in done.failed.items() if p in keep})
