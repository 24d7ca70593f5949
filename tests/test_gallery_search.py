"""gallery.search: exact search in chunks, identities ranked by their best face, identify()."""
import numpy as np
import pytest

import tinyface
from gallery_testing import CROPS, OPSET10, PHOTO, tiny_model
from tinyface.errors import GalleryError, InputError
from tinyface.gallery.search import CODED_QUERIES, exact_search, rank_identities, unit_queries
from tinyface.gallery.store import Gallery
from tinyface.kernels.codes import encode
from tinyface.kernels.topk import reference_top_k

EXAMPLES = CROPS.parent.parent.parent / "examples"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


def brute_force_identities(emb, names, queries, k):
    """Per query: identities by their best face's cosine, best first, the first k."""
    e = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    out = []
    for s in q.astype(np.float64) @ e.T.astype(np.float64):
        best = {}
        for name, v in zip(names, s):
            best[name] = max(best.get(name, -2), v)
        out.append(sorted(best.items(), key=lambda t: -t[1])[:k])
    return out


@pytest.mark.parametrize("seed", range(4))
def test_identities_rank_by_their_best_face(tmp_path, tiny, seed):
    """Clustered faces, one crowded identity near every query: finding k identities
    needs many more than 4k faces, which the search asks for in growing rounds."""
    rng = np.random.default_rng(seed)
    centre = rng.standard_normal(16)
    crowd = centre + 0.05 * rng.standard_normal((300, 16))          # 300 faces of "crowd"
    others = rng.standard_normal((60, 16))
    emb = np.concatenate([crowd, others]).astype(np.float32)
    names = ["crowd"] * 300 + [f"n{i % 20}" for i in range(60)]
    queries = np.concatenate([centre[None] + 0.01 * rng.standard_normal((2, 16)),
                              rng.standard_normal((2, 16))]).astype(np.float32)
    with Gallery(tmp_path / "g.db", tiny) as g:
        g.add(emb, names)
        for k in (1, 3, 25):
            got = rank_identities(g, queries, k)
            for matches, want in zip(got, brute_force_identities(emb, names, queries, k)):
                assert [m.identity for m in matches] == [name for name, _ in want]
                np.testing.assert_allclose([m.similarity for m in matches], [v for _, v in want], atol=1e-5)
                for m in matches:
                    assert names[m.face_id] == m.identity


def test_removed_faces_do_not_count(tmp_path, tiny):
    emb = np.eye(3, 16, dtype=np.float32)
    with Gallery(tmp_path / "g.db", tiny) as g:
        g.add(emb, ["a", "b", "c"])
        g.remove(identities=["a"])
        (matches,) = rank_identities(g, emb[:1], 5)
        assert [m.identity for m in matches] == ["b", "c"]
        assert rank_identities(Gallery(tmp_path / "empty.db", tiny), emb[:1], 5) == [[]]


def test_exact_search_in_small_chunks_equals_one_pass():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1000, 32)).astype(np.float32)
    q = rng.standard_normal((20, 32)).astype(np.float32)
    live = rng.random(1000) < 0.9
    whole = exact_search(x, q, 7, live, chunk_rows=1000)
    for chunk in (1, 33, 999):
        part = exact_search(x, q, 7, live, chunk_rows=chunk)
        np.testing.assert_array_equal(part[1], whole[1])
    np.testing.assert_array_equal(whole[1], reference_top_k(x, q, 7, live)[1])


@pytest.mark.parametrize("m", [1, CODED_QUERIES, CODED_QUERIES + 1, 20])
def test_exact_search_with_codes_of_some_rows_equals_without(m):
    """Codes of none, some or all rows, in chunks or not: the same answer, bit for bit
    (codes are used for at most CODED_QUERIES queries, and ignored beyond)."""
    rng = np.random.default_rng(m)
    x = unit_queries(rng.standard_normal((3000, 64)), 64)
    q = unit_queries(x[:m] + 0.1 * rng.standard_normal((m, 64)), 64)
    live = rng.random(3000) < 0.9
    want = exact_search(x, q, 9, live)
    codes = encode(x)
    for coded, chunk in ((0, 700), (1234, 700), (3000, 700), (3000, 3000)):
        got = exact_search(x, q, 9, live, codes[:coded], chunk_rows=chunk)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])


@pytest.mark.parametrize("queries, message", [
    (np.ones((2, 15)), "M x 16"), (np.ones((0, 16)), "M x 16"),
    (np.full(16, np.inf), "NaN or infinity"), (np.zeros(16), "all zeros")])
def test_bad_queries_are_refused(queries, message):
    with pytest.raises(InputError, match=message):
        unit_queries(queries, 16)


@pytest.fixture(scope="module")
def astronaut_gallery(tmp_path_factory):
    """The astronaut (from the test photo) and two people from aligned LFW crops."""
    path = tmp_path_factory.mktemp("g") / "g.db"
    model = tinyface.load()
    with Gallery(path, model) as g:
        g.add(model.embed_photo(PHOTO), "astronaut")
        g.add(model.embed([CROPS / "0_fn_0_aligned.jpg", CROPS / "1_fn_0_aligned.jpg"]), ["p0", "p1"])
    return path, model


def test_identify_names_the_person_in_another_photo(astronaut_gallery):
    path, model = astronaut_gallery
    with Gallery(path, model) as g:
        (found,) = g.identify(EXAMPLES / "astronaut_variant.jpg", k=2)
        assert found.known and found.face is not None
        assert found.matches[0].identity == "astronaut" and found.matches[0].similarity > 0.8
        assert [m.identity for m in found.matches] == ["astronaut"]      # the others are below 0.35
        (strict,) = g.identify(EXAMPLES / "astronaut_variant.jpg", threshold=0.999)
        assert not strict.known and strict.nearest.identity == "astronaut"
        (crop,) = g.identify(CROPS / "0_fn_1_aligned.jpg", aligned=True)
        assert crop.face is None and crop.nearest.identity == "p0"


def test_identify_a_photo_without_a_face(astronaut_gallery, tmp_path):
    from PIL import Image
    path, model = astronaut_gallery
    Image.new("RGB", (200, 150), (90, 90, 90)).save(tmp_path / "grey.png")
    with Gallery(path, model) as g:
        assert g.identify(tmp_path / "grey.png") == []


def test_identify_takes_a_pipeline_of_the_gallerys_model_only(astronaut_gallery):
    path, model = astronaut_gallery
    with Gallery(path, model) as g:
        same = tinyface.FacePipeline(tinyface.load(), min_face_size=40)
        assert g.identify(PHOTO, pipeline=same)[0].nearest.identity == "astronaut"
        with pytest.raises(GalleryError, match="was made with model"):
            g.identify(PHOTO, pipeline=tinyface.FacePipeline(tinyface.load(OPSET10)))
