"""1:N search: the faces, and the identities, most similar to a query.

Similarity is the cosine: queries and stored vectors are unit-norm, so it is
their inner product.  Search is exact: every stored vector is scored, one
chunk of ``CHUNK_ROWS`` rows of the memory-mapped vectors file at a time, by
the fused product-and-selection kernel :class:`tinyface.kernels.topk.TopK`,
all queries in one pass over the file.  Memory beyond the file's pages: the
queries and k entries per query and thread.  A search of few queries
(``use_codes``) scans the gallery's int8 codes instead, a quarter of the
bytes, and reads a float32 row only where its code's score, with its error
bound, could reach the k best (:mod:`tinyface.kernels.codes`): the same
answer, bit for bit.

An identity's score is that of its best face.  The k best identities are the
first k distinct identities of the faces ranked by score, so
:func:`rank_identities` asks for the best ``4k`` faces, and for four times
more for the queries whose faces named fewer than k identities, until each
query has k identities or every face was ranked.
"""
from typing import NamedTuple, Optional

import numpy as np

from tinyface.errors import InputError
from tinyface.kernels.topk import TopK
from tinyface.kernels.tuning import SEARCH_CHUNK_ROWS as CHUNK_ROWS, SEARCH_CODED_QUERIES as CODED_QUERIES, \
    SEARCH_CODED_ROWS as CODED_ROWS


class Match(NamedTuple):
    """An identity and its similarity to a query: that of its best face."""
    identity: str
    similarity: float
    face_id: int              # the best face's id in the gallery
    path: Optional[str]       # the file that face came from


class Identification(NamedTuple):
    """One face of a photo and who it is."""
    face: object              # the tinyface.detect Face, or None for an aligned crop
    matches: list             # Match, best first: those at or above the threshold
    nearest: Optional[Match]  # the most similar identity, whatever the threshold

    @property
    def known(self) -> bool:
        return bool(self.matches)


def use_codes(rows, queries) -> bool:
    """Whether a search of ``queries`` queries over ``rows`` rows scans int8 codes first."""
    return queries <= CODED_QUERIES and rows >= CODED_ROWS


def exact_search(vectors, queries, k, live=None, codes=None, chunk_rows=CHUNK_ROWS):
    """(scores, ids), M x min(k, live rows): for each of the M ``queries`` the k rows of
    ``vectors`` (N x D float32, e.g. a memory map) with the largest inner product, best
    first, ties by smaller id; ``live`` masks out removed rows.  ``codes``: the int8 codes
    of the first rows of ``vectors`` (``kernels.codes.encode``, maybe of fewer rows), which
    the search scans instead of those rows when :func:`use_codes` says it pays; the answer
    is the same.  Small searches run on fewer threads than Numba's count (see ``TopK``)."""
    vectors = np.asarray(vectors)            # a memory map's slices cost more than an array's
    n = len(vectors)
    top = TopK(queries, k, rows=n)
    coded = len(codes) if codes is not None and use_codes(n, len(top.queries)) else 0
    for start in range(0, coded, chunk_rows):
        stop = min(coded, start + chunk_rows)
        top.scan(vectors[start:stop], start, live, codes[start:stop])
    for start in range(coded, n, chunk_rows):
        top.scan(vectors[start:start + chunk_rows], start, live)
    return top.result()


def unit_queries(embeddings, dim) -> np.ndarray:
    """``embeddings`` (D or M x D) as M x D float32 unit rows."""
    q = np.asarray(embeddings, np.float32)
    if q.ndim == 1:
        q = q[None]
    if q.ndim != 2 or q.shape[0] == 0 or q.shape[1] != dim:
        raise InputError(f"queries must be M x {dim} embeddings (the gallery's size), "
                         f"got shape {q.shape}")
    if not np.isfinite(q).all():
        raise InputError("query embeddings hold NaN or infinity")
    norms = np.linalg.norm(q.astype(np.float64), axis=1, keepdims=True)
    if norms.min() == 0:
        raise InputError("a query embedding is all zeros: it has no direction to compare")
    return (q / norms).astype(np.float32)


def search(gallery, embeddings, k=5):
    """(scores, ids) of the k faces most similar to each query embedding, best first
    (M x k', k' = min(k, faces in the gallery)).  The embeddings must come from the
    gallery's model (:class:`GalleryError` otherwise)."""
    gallery.check_model()
    dim = gallery.dim
    if dim is None:
        q = unit_queries(embeddings, gallery.card.dim)
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    q = unit_queries(embeddings, dim)
    vectors, live = gallery.vectors()
    codes = gallery.codes(len(vectors)) if use_codes(len(vectors), len(q)) else None
    return exact_search(vectors, q, k, live, codes)


def rank_identities(gallery, embeddings, k=5) -> list:
    """For each query embedding, the (up to) k identities whose best face is the most
    similar, as :class:`Match` lists, best first."""
    gallery.check_model()
    counts = gallery.counts()
    q = unit_queries(embeddings, gallery.dim or gallery.card.dim)
    if counts.faces == 0:
        return [[] for _ in q]
    want = min(k, counts.identities)
    vectors, live = gallery.vectors()
    codes = None                     # fetched by the first pass with few enough queries to use them
    ranked = [None] * len(q)
    pending = list(range(len(q)))
    items = min(counts.faces, 4 * k)
    while pending:
        if codes is None and use_codes(len(vectors), len(pending)):
            codes = gallery.codes(len(vectors))
        scores, ids = exact_search(vectors, q[pending], items, live, codes)
        rows = {f.id: f for f in gallery.faces(ids=np.unique(ids))}
        still = []
        for j, row_scores, row_ids in zip(pending, scores, ids):
            matches, seen = [], set()
            for s, i in zip(row_scores, row_ids):
                face = rows[int(i)]
                if face.identity not in seen:
                    seen.add(face.identity)
                    matches.append(Match(face.identity, float(s), int(i), face.path))
                    if len(matches) == want:
                        break
            ranked[j] = matches
            if len(matches) < want and items < counts.faces:
                still.append(j)
        pending, items = still, min(counts.faces, 4 * items)
    return ranked


def identify(gallery, photo, k=5, threshold=None, aligned=False, pipeline=None) -> list:
    """Who is in ``photo``: one :class:`Identification` per face found (largest first; [] if
    none), or one for the whole image if ``aligned`` (an aligned crop).

    ``threshold``: the similarity below which an identity does not match (default:
    :func:`tinyface.verify.threshold_for` the gallery's model).  ``pipeline``: a
    :class:`~tinyface.face.pipeline.FacePipeline` to reuse (its model must be the
    gallery's, :class:`GalleryError` otherwise), e.g. with other detector options.
    """
    from tinyface.face.image import load_rgb
    from tinyface.face.pipeline import FacePipeline
    from tinyface.gallery.fingerprint import model_card
    from tinyface.verify import threshold_for
    model = gallery.model
    gallery.check_model()
    threshold = threshold_for(model)[0] if threshold is None else float(threshold)
    if aligned:
        faces, crops = [None], [load_rgb(photo)]
    else:
        if pipeline is None:
            pipeline = FacePipeline(model)
        else:
            gallery.check_model(model_card(pipeline.model))
        rgb = load_rgb(photo)
        faces = pipeline.detect(rgb)
        crops = [pipeline.align(rgb, f) for f in faces]
    if not crops:
        return []
    ranked = rank_identities(gallery, model.embed(crops), k)
    return [Identification(face, [m for m in matches if m.similarity >= threshold],
                           matches[0] if matches else None)
            for face, matches in zip(faces, ranked)]
