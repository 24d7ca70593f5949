"""Embedding an evaluation's images: once each, failures recorded, the cache reused and checked."""
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface
from tinyface.errors import TinyfaceError
from tinyface.evaluation.embed import embed_images, load_cache

DATA = Path(__file__).parent / "data"
FACES = sorted((DATA / "lfw-hard-pairs").glob("*.jpg"))[:6]
PHOTO = DATA / "astronaut.png"


@pytest.fixture(scope="module")
def model():
    return tinyface.load()


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("odd")
    (d / "not_an_image.jpg").write_text("hello\n")
    Image.new("RGB", (320, 240), (128, 128, 128)).save(d / "grey.png")
    Image.open(FACES[0]).convert("RGB").resize((150, 150)).save(d / "big.png")
    return d


class Counting:
    """A model whose ``embed`` calls are counted (images per call)."""

    def __init__(self, model):
        self.model, self.calls = model, []
        self.info, self.path = model.info, model.path

    def embed(self, faces, flip=False):
        self.calls.append(len(faces))
        return self.model.embed(faces, flip=flip)


def test_aligned_images_once_each_in_batches(model):
    counting = Counting(model)
    paths = [str(p) for p in FACES] + [str(FACES[0])]          # a repeat
    found = embed_images(counting, paths, aligned=True, batch=4)
    assert counting.calls == [4, 2]
    assert list(found.vectors) == [os.path.abspath(p) for p in FACES]
    np.testing.assert_allclose(np.array(list(found.vectors.values())), model.embed(FACES), atol=1e-6)
    assert found.failed == {} and found.notes == {}


def test_failures_are_recorded_not_raised(model, odd_files):
    paths = [FACES[0], odd_files / "not_an_image.jpg", odd_files / "missing.jpg", odd_files / "big.png"]
    found = embed_images(model, [str(p) for p in paths], aligned=True)
    assert set(found.vectors) == {str(FACES[0]), str(odd_files / "big.png")}
    assert found.failed[str(odd_files / "missing.jpg")].startswith("unreadable: ")
    assert "no such file" in found.failed[str(odd_files / "missing.jpg")]
    assert found.failed[str(odd_files / "not_an_image.jpg")].startswith("unreadable: ")
    assert found.notes == {str(odd_files / "big.png"): "resized from 150x150"}


def test_photos_are_detected_and_aligned(model, odd_files):
    found = embed_images(model, [str(PHOTO), str(odd_files / "grey.png")], aligned=False)
    expected = model.embed_photo(str(PHOTO))
    np.testing.assert_allclose(found.vectors[str(PHOTO)], expected, atol=1e-6)
    assert found.failed[str(odd_files / "grey.png")] == "no face: none detected in 320x240 pixels"


def test_flip_is_the_models_flip_averaging(model):
    found = embed_images(model, [str(FACES[0])], aligned=True, flip=True)
    np.testing.assert_allclose(found.vectors[str(FACES[0])], model.embed([FACES[0]], flip=True)[0],
                               atol=1e-6)


def test_cache_is_reused_and_extended(model, odd_files, tmp_path):
    cache = tmp_path / "emb.npz"
    first = [str(FACES[0]), str(odd_files / "missing.jpg")]
    embed_images(model, first, aligned=True, cache=cache)
    counting = Counting(model)
    found = embed_images(counting, first + [str(FACES[1])], aligned=True, cache=cache)
    assert counting.calls == [1]                 # only the new image; the failure is not retried
    assert str(odd_files / "missing.jpg") in found.failed
    again = Counting(model)
    cached = embed_images(again, first + [str(FACES[1])], aligned=True, cache=cache)
    assert again.calls == []
    for p, v in found.vectors.items():
        np.testing.assert_array_equal(cached.vectors[p], v)


def test_cache_made_with_other_settings_is_refused(model, tmp_path):
    cache = tmp_path / "emb.npz"
    embed_images(model, [str(FACES[0])], aligned=True, cache=cache)
    with pytest.raises(TinyfaceError, match="other settings.*flip"):
        embed_images(model, [str(FACES[0])], aligned=True, flip=True, cache=cache)
    with pytest.raises(TinyfaceError, match="other settings.*aligned"):
        embed_images(model, [str(PHOTO)], aligned=False, cache=cache)


def test_cache_settings_name_the_model_file(model, tmp_path):
    cache = tmp_path / "emb.npz"
    embed_images(model, [str(FACES[0])], aligned=True, cache=cache)
    with np.load(cache) as z:
        settings = json.loads(str(z["settings"]))
    assert len(settings["model_sha256"]) == 64 and settings["aligned"] is True
    assert load_cache(cache, settings).vectors.keys() == {str(FACES[0])}


def test_unreadable_cache_is_an_error(model, tmp_path):
    cache = tmp_path / "emb.npz"
    cache.write_text("not a zip\n")
    with pytest.raises(TinyfaceError, match="cannot read embedding cache"):
        embed_images(model, [str(FACES[0])], aligned=True, cache=cache)


def test_cache_written_when_the_run_is_interrupted(model, tmp_path):
    cache = tmp_path / "emb.npz"

    class Interrupted(Counting):
        def embed(self, faces, flip=False):
            if self.calls:
                raise KeyboardInterrupt
            return super().embed(faces, flip)

    with pytest.raises(KeyboardInterrupt):
        embed_images(Interrupted(model), [str(p) for p in FACES], aligned=True, batch=2, cache=cache)
    counting = Counting(model)
    embed_images(counting, [str(p) for p in FACES], aligned=True, batch=2, cache=cache)
    assert counting.calls == [2, 2]              # the first batch came from the cache
