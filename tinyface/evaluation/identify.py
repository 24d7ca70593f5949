"""Closed-set identification: CMC curve, rank-k rates, rank-1 against distractors.

Layout: probe embeddings P x D with P labels, gallery embeddings G x D with G
labels (any hashable values: names, ids), distractor embeddings M x D
(people who are none of the probes).  Similarity is cosine.

An identity's score for a probe is its *best* gallery item's similarity.  A
probe's rank is 1 + the number of other identities (and distractors) scoring
at least as high as its own identity, so ties count against it.  The CMC
curve gives, for each k, the fraction of probes of rank <= k; rank-1 and
rank-5 identification rates are its first and fifth values.

MegaFace's question, how rank-1 falls as the gallery grows: distractors are
added in a fixed shuffled order (seeded), each size a superset of the one
before (by default 0, 10, 100, 1000, ... and finally all of them), and a
probe is right at a size when its identity beats every other identity and
every distractor so far.
"""
import numpy as np

from tinyface.errors import InputError

CHUNK = 4096          # distractors compared at once (memory: P x CHUNK floats)


def unit_rows(x, name: str) -> np.ndarray:
    """Rows of ``x`` (N x D) scaled to length 1, in float32; InputError for zero rows or NaN."""
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InputError(f"{name} must be a non-empty N x D array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{name} hold NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise InputError(f"{name}: {int((norms == 0).sum())} embeddings are all zeros")
    return x / norms


def identity_scores(probes, probe_labels, gallery, gallery_labels):
    """(P x I best similarity per identity, P true-identity column indices, I identities).

    Raises InputError when a probe's identity has no gallery item.
    """
    p = unit_rows(probes, "probe embeddings")
    g = unit_rows(gallery, "gallery embeddings")
    if p.shape[1] != g.shape[1]:
        raise InputError(f"probe embeddings have {p.shape[1]} values, gallery ones {g.shape[1]}")
    if len(probe_labels) != len(p) or len(gallery_labels) != len(g):
        raise InputError(f"{len(p)} probes with {len(probe_labels)} labels, {len(g)} gallery "
                         f"items with {len(gallery_labels)} labels")
    identities, column = np.unique(np.asarray(gallery_labels), return_inverse=True)
    order = np.argsort(column, kind="stable")
    starts = np.r_[0, np.flatnonzero(np.diff(column[order])) + 1]
    best = np.maximum.reduceat(p @ g[order].T, starts, axis=1)
    truth = np.searchsorted(identities, np.asarray(probe_labels))
    missing = (truth >= len(identities)) | (identities[np.minimum(truth, len(identities) - 1)]
                                            != np.asarray(probe_labels))
    if missing.any():
        raise InputError(f"{int(missing.sum())} probes' identities have no gallery item, "
                         f"e.g. {np.asarray(probe_labels)[missing][0]!r}")
    return best, truth, identities


def ranks(best, truth) -> np.ndarray:
    """Each probe's rank (1 = first) among the identities, ties counting against it."""
    own = best[np.arange(len(best)), truth]
    return (best >= own[:, None]).sum(axis=1)


def cmc(probes, probe_labels, gallery, gallery_labels) -> np.ndarray:
    """CMC curve: element k-1 is the fraction of probes of rank <= k, k = 1 .. identities."""
    best, truth, identities = identity_scores(probes, probe_labels, gallery, gallery_labels)
    r = ranks(best, truth)
    return np.array([np.mean(r <= k) for k in range(1, len(identities) + 1)])


def distractor_sizes(count: int) -> list:
    """0, 10, 100, ... below ``count``, then ``count``."""
    sizes, n = [0], 10
    while n < count:
        sizes.append(n)
        n *= 10
    return sizes + [count] if count else sizes


def rank1_with_distractors(probes, probe_labels, gallery, gallery_labels, distractors,
                           sizes=None, seed=0) -> list:
    """[(distractors added, rank-1 rate)] for each size (default :func:`distractor_sizes`)."""
    best, truth, _ = identity_scores(probes, probe_labels, gallery, gallery_labels)
    own = best[np.arange(len(best)), truth]
    others = best.copy()
    others[np.arange(len(best)), truth] = -np.inf
    rival = others.max(axis=1)                  # the best other identity (-inf if none)
    p = unit_rows(probes, "probe embeddings")
    d = unit_rows(distractors, "distractor embeddings")
    if d.shape[1] != p.shape[1]:
        raise InputError(f"distractor embeddings have {d.shape[1]} values, probes {p.shape[1]}")
    sizes = distractor_sizes(len(d)) if sizes is None else sorted(set(int(n) for n in sizes))
    if sizes[0] < 0 or sizes[-1] > len(d):
        raise InputError(f"distractor counts must lie in 0..{len(d)}, got {sizes[0]}..{sizes[-1]}")
    order = np.random.default_rng(seed).permutation(len(d))
    rows, added = [], 0
    for n in sizes:
        for start in range(added, n, CHUNK):
            chunk = d[order[start:min(start + CHUNK, n)]]
            rival = np.maximum(rival, (p @ chunk.T).max(axis=1))
        added = n
        rows.append((n, float(np.mean(own > rival))))
    return rows


def identification_report(probes, probe_labels, gallery, gallery_labels, distractors=None,
                          sizes=None, seed=0) -> dict:
    """Rank-1, rank-5, the CMC curve and (with distractors) rank-1 as the gallery grows."""
    curve = cmc(probes, probe_labels, gallery, gallery_labels)
    identities = len(curve)
    report = {"probes": len(probe_labels), "gallery_items": len(gallery_labels),
              "identities": identities, "rank1": float(curve[0]),
              "rank5": float(curve[min(5, identities) - 1]), "cmc": curve.tolist()}
    if distractors is not None:
        report["distractors"] = [{"distractors": n, "rank1": rate} for n, rate in
                                 rank1_with_distractors(probes, probe_labels, gallery,
                                                        gallery_labels, distractors, sizes, seed)]
    return report


def format_identification(report: dict) -> str:
    """The report as text: the rates, then the distractor table."""
    lines = [f"{report['probes']} probes against {report['identities']} identities "
             f"({report['gallery_items']} gallery items)",
             f"rank-1 {100 * report['rank1']:.2f}%, rank-5 {100 * report['rank5']:.2f}%"
             + (" (fewer than 5 identities)" if report["identities"] < 5 else "")]
    if "distractors" in report:
        lines.append("distractors  gallery size  rank-1")
        for row in report["distractors"]:
            size = report["identities"] + row["distractors"]
            lines.append(f"{row['distractors']:>11,}  {size:>12,}  {100 * row['rank1']:6.2f}%")
    return "\n".join(lines)
