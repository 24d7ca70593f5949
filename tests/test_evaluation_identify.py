"""Identification: CMC and rank-k on hand-made embeddings, rank-1 against distractors."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinyface.errors import InputError
from tinyface.evaluation import identify


def unit(*angles_deg):
    """2-D unit vectors at these angles: cosine similarity = cos(angle difference)."""
    a = np.radians(angles_deg)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


GALLERY = np.r_[[[1.0, 0.0]], unit(5), [[0.0, 1.0], [-1.0, 0.0]]]    # at 0, 5, 90, 180 degrees
GALLERY_LABELS = ["alice", "alice", "bob", "carol"]


def test_identity_score_is_its_best_item():
    best, truth, identities = identify.identity_scores(unit(4), ["alice"], GALLERY, GALLERY_LABELS)
    assert list(identities) == ["alice", "bob", "carol"]
    np.testing.assert_allclose(best[0], np.cos(np.radians([1, 86, 176])), atol=1e-6)
    assert truth.tolist() == [0]


def test_cmc_by_hand():
    probes = np.r_[unit(2, 80, 60), [[-1.0, 1.0]]]        # the last at 135 degrees
    labels = ["alice", "bob", "alice", "carol"]
    # alice@2 and bob@80: rank 1.  alice@60: bob (30 deg away) beats alice (55) -> rank 2.
    # carol@135: bob and carol both 45 deg away, exactly; the tie counts against her -> rank 2.
    curve = identify.cmc(probes, labels, GALLERY, GALLERY_LABELS)
    np.testing.assert_allclose(curve, [0.5, 1.0, 1.0])
    report = identify.identification_report(probes, labels, GALLERY, GALLERY_LABELS)
    assert report["rank1"] == 0.5 and report["rank5"] == 1.0 and report["identities"] == 3
    assert "fewer than 5 identities" in identify.format_identification(report)


def test_embeddings_need_not_be_unit_length():
    probes = unit(2, 80) * [[3.0], [0.5]]
    curve = identify.cmc(probes, ["alice", "bob"], GALLERY * 7, GALLERY_LABELS)
    assert curve[0] == 1.0


@given(st.integers(0, 2**31), st.integers(2, 6), st.integers(1, 8))
def test_ranks_match_a_plain_loop(seed, people, probes_count):
    rng = np.random.default_rng(seed)
    g_labels = np.r_[np.arange(people), rng.integers(0, people, 5)]
    gallery = rng.normal(size=(len(g_labels), 4))
    p_labels = rng.integers(0, people, probes_count)
    probes = rng.normal(size=(probes_count, 4))
    best, truth, _ = identify.identity_scores(probes, p_labels, gallery, g_labels)
    ranks = identify.ranks(best, truth)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    for probe, label, rank in zip(probes, p_labels, ranks):
        sims = g @ (probe / np.linalg.norm(probe))
        per_person = {who: sims[g_labels == who].max() for who in range(people)}
        own = per_person[label]
        assert rank == 1 + sum(v >= own - 1e-6 for who, v in per_person.items() if who != label)


def test_distractor_sizes():
    assert identify.distractor_sizes(0) == [0]
    assert identify.distractor_sizes(10) == [0, 10]
    assert identify.distractor_sizes(2500) == [0, 10, 100, 1000, 2500]


def test_rank1_falls_as_distractors_are_added():
    probes = unit(0, 90)
    labels = ["alice", "bob"]
    gallery, g_labels = unit(20, 100), ["alice", "bob"]
    # Distractors near alice's probe (at 5 deg: closer than her gallery item at 20 deg) or far away.
    near = unit(5)
    far = unit(*np.linspace(200, 340, 30))
    distractors = np.r_[far, near]
    rows = identify.rank1_with_distractors(probes, labels, gallery, g_labels, distractors,
                                           sizes=[0, 10, len(distractors)])
    assert rows[0] == (0, 1.0)
    assert rows[-1] == (31, 0.5)                 # alice lost to the near distractor, bob did not
    rates = [r for _, r in identify.rank1_with_distractors(probes, labels, gallery, g_labels,
                                                           distractors)]
    assert rates == sorted(rates, reverse=True)   # nested galleries: never rises


def test_rank1_with_distractors_in_chunks(monkeypatch):
    rng = np.random.default_rng(1)
    probes, gallery = rng.normal(size=(20, 8)), rng.normal(size=(20, 8))
    labels = np.arange(20)
    distractors = rng.normal(size=(50, 8))
    whole = identify.rank1_with_distractors(probes, labels, gallery, labels, distractors)
    monkeypatch.setattr(identify, "CHUNK", 7)
    assert identify.rank1_with_distractors(probes, labels, gallery, labels, distractors) == whole


def test_report_table():
    report = identify.identification_report(unit(0, 90), ["alice", "bob"], unit(20, 100),
                                            ["alice", "bob"], distractors=unit(5, 200, 250))
    assert [r["distractors"] for r in report["distractors"]] == [0, 3]
    text = identify.format_identification(report)
    assert "distractors  gallery size  rank-1" in text and "50.00%" in text


@pytest.mark.parametrize("probes, labels, gallery, g_labels, match", [
    (unit(0), ["dave"], GALLERY, GALLERY_LABELS, "no gallery item.*dave"),
    (unit(0), ["alice", "bob"], GALLERY, GALLERY_LABELS, "labels"),
    (np.zeros((1, 2)), ["alice"], GALLERY, GALLERY_LABELS, "all zeros"),
    (np.ones((1, 3)), ["alice"], GALLERY, GALLERY_LABELS, "3 values"),
    (np.full((1, 2), np.nan), ["alice"], GALLERY, GALLERY_LABELS, "NaN"),
    (np.ones(2), ["alice"], GALLERY, GALLERY_LABELS, "N x D"),
])
def test_bad_inputs(probes, labels, gallery, g_labels, match):
    with pytest.raises(InputError, match=match):
        identify.cmc(probes, labels, gallery, g_labels)


def test_bad_distractor_sizes():
    with pytest.raises(InputError, match="0..2"):
        identify.rank1_with_distractors(unit(0), ["alice"], GALLERY, GALLERY_LABELS, unit(1, 2),
                                        sizes=[0, 5])
