"""The photo-to-embedding pipeline: detect, align, embed.

Metamorphic checks on the astronaut photo (NASA, public domain, 512×512):
rotating, scaling, shifting, padding or mirroring the photo must not change
the person, so the embedding of the aligned crop of every variant must stay
within cosine similarity 0.9 of the original's.  Measured with the bundled
MobileFaceNet: minimum 0.967 (mirror), the others 0.970-0.993.
"""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tinyface
from tinyface.errors import InputError, NoFaceError, TinyfaceError
from tinyface.face.detection import Face
from tinyface.face.pipeline import AlignedFace, FaceEmbedding, FacePipeline

PHOTO = Path(__file__).parent / "data" / "astronaut.png"
MIN_SIMILARITY = 0.9


@pytest.fixture(scope="module")
def pipeline():
    return FacePipeline()


@pytest.fixture(scope="module")
def photo():
    return np.asarray(Image.open(PHOTO).convert("RGB"))


@pytest.fixture(scope="module")
def face(pipeline, photo):
    (face,) = pipeline.detect(photo)
    return face


@pytest.fixture(scope="module")
def reference(pipeline, photo):
    return pipeline.embed_photo(photo)


@pytest.fixture(scope="module")
def two_faces(photo):
    """The photo at full size and at half size, side by side on a grey canvas."""
    small = np.asarray(Image.fromarray(photo).resize((256, 256), Image.Resampling.LANCZOS))
    canvas = np.full((512, 512 + 40 + 256, 3), 128, np.uint8)
    canvas[:, :512] = photo
    canvas[128:384, 552:] = small
    return canvas


# ---------------------------------------------------------------- variants

def rotated(image, degrees):
    return np.asarray(Image.fromarray(image).rotate(degrees, resample=Image.Resampling.BICUBIC,
                                                    expand=True, fillcolor=(128, 128, 128)))


def scaled(image, factor):
    h, w = image.shape[:2]
    return np.asarray(Image.fromarray(image).resize((round(w * factor), round(h * factor)),
                                                    Image.Resampling.LANCZOS))


def bordered(image, left, top, right, bottom, colour=(90, 120, 150)):
    h, w = image.shape[:2]
    out = np.empty((h + top + bottom, w + left + right, 3), np.uint8)
    out[:] = colour
    out[top:top + h, left:left + w] = image
    return out


def shifted(image, dx, dy):
    """Same size, content moved by (dx, dy), the uncovered strip black."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[dy:, dx:] = image[:h - dy, :w - dx]
    return out


VARIANTS = {
    "rotate+10": lambda im: rotated(im, 10),
    "rotate-10": lambda im: rotated(im, -10),
    "scale-0.75": lambda im: scaled(im, 0.75),
    "scale-1.5": lambda im: scaled(im, 1.5),
    "shift-60-40": lambda im: shifted(im, 60, 40),
    "borders": lambda im: bordered(im, 40, 25, 100, 60),
    "mirror": lambda im: np.ascontiguousarray(im[:, ::-1]),
}


@pytest.mark.parametrize("name", VARIANTS)
def test_variants_embed_like_the_original(name, pipeline, photo, reference):
    variant = VARIANTS[name](photo)
    emb = pipeline.embed_photo(variant)
    sim = tinyface.cosine_similarity(reference, emb)
    print(f"{name}: cosine similarity {sim:.4f}")
    assert emb.shape == reference.shape and emb.dtype == np.float32
    assert sim >= MIN_SIMILARITY


def test_embedding_is_the_model_embedding_of_the_aligned_crop(pipeline, photo, reference):
    (aligned,) = pipeline.aligned_faces(photo)
    assert isinstance(aligned, AlignedFace) and isinstance(aligned.face, Face)
    assert aligned.crop.shape == (112, 112, 3) and aligned.crop.dtype == np.uint8
    np.testing.assert_array_equal(aligned.crop, tinyface.align(photo, aligned.face.landmarks))
    np.testing.assert_allclose(reference, pipeline.model.embed(aligned.crop)[0], rtol=0, atol=1e-6)


def test_inputs_path_pil_and_array_agree(pipeline, photo, reference):
    for image in (str(PHOTO), Image.open(PHOTO)):
        np.testing.assert_allclose(pipeline.embed_photo(image), reference, rtol=0, atol=1e-6)


def test_flip_averages_with_the_mirrored_crop(pipeline, photo, face):
    crop = tinyface.align(photo, face)
    np.testing.assert_allclose(pipeline.embed_photo(photo, flip=True),
                               pipeline.model.embed(crop, flip=True)[0], rtol=0, atol=1e-6)


def test_model_embed_photo_and_batch(pipeline, photo, reference):
    half = scaled(photo, 0.5)
    np.testing.assert_allclose(pipeline.model.embed_photo(half), pipeline.embed_photo(half),
                               rtol=0, atol=1e-6)
    batch = pipeline.embed_photos([photo, PHOTO])
    assert batch.shape == (2, reference.size)
    np.testing.assert_allclose(batch, [reference, reference], rtol=0, atol=1e-5)  # batch of 2


# ---------------------------------------------------------------- no face, several faces

def test_no_face_raises_naming_the_photo(pipeline, tmp_path):
    grey = np.full((150, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"no face found in 'image array 200x150'"):
        pipeline.embed_photo(grey)
    path = tmp_path / "grey.png"
    Image.fromarray(grey).save(path)
    with pytest.raises(NoFaceError, match=r"no face found in '.*grey\.png' \(200x150 pixels\)"):
        pipeline.embed_photo(path)
    with pytest.raises(NoFaceError, match="grey"):
        pipeline.embed_photo(path, all_faces=True)
    with pytest.raises(NoFaceError, match="'holiday'"):
        pipeline.embed_photo(grey, name="holiday")
    with pytest.raises(NoFaceError, match="grey"):
        pipeline.embed_photos([scaled(np.asarray(Image.open(PHOTO)), 0.5), path])
    assert tinyface.detect(grey) == []


def test_aligned_fallback_only_at_the_model_input_size(pipeline):
    grey = np.full((112, 112, 3), 128, np.uint8)
    with pytest.raises(NoFaceError):
        pipeline.embed_photo(grey)
    with pytest.warns(UserWarning, match="treating it as an already-aligned face"):
        emb = pipeline.embed_photo(grey, aligned_fallback=True)
    np.testing.assert_allclose(emb, pipeline.model.embed(grey)[0], rtol=0, atol=1e-6)
    with pytest.warns(UserWarning, match="already-aligned"):
        (record,) = pipeline.embed_photo(grey, all_faces=True, aligned_fallback=True)
    assert record.face is None
    with pytest.raises(NoFaceError):
        pipeline.embed_photo(np.full((112, 113, 3), 128, np.uint8), aligned_fallback=True)


def test_several_faces_largest_with_a_warning(pipeline, two_faces, reference):
    faces = pipeline.detect(two_faces)
    assert len(faces) == 2 and faces[0].area > 3 * faces[1].area
    assert faces[0].box[2] < 512 and faces[1].box[0] > 552
    with pytest.warns(UserWarning, match="2 faces found; using the largest"):
        emb = pipeline.embed_photo(two_faces)
    np.testing.assert_allclose(emb, pipeline.model.embed(tinyface.align(two_faces, faces[0]))[0],
                               rtol=0, atol=1e-6)
    assert tinyface.cosine_similarity(emb, reference) >= MIN_SIMILARITY


def test_all_faces_returns_every_face_largest_first(pipeline, two_faces, reference, recwarn):
    records = pipeline.embed_photo(two_faces, all_faces=True)
    assert not [w for w in recwarn if "faces found" in str(w.message)]
    assert len(records) == 2 and all(isinstance(r, FaceEmbedding) for r in records)
    assert records[0].face.area > records[1].face.area
    for face, emb in records:            # both are the astronaut
        assert emb.shape == reference.shape
        assert tinyface.cosine_similarity(emb, reference) >= MIN_SIMILARITY


# ---------------------------------------------------------------- public detect / align

def test_detect_accepts_path_pil_and_array(photo, face):
    for image in (PHOTO, Image.open(PHOTO)):           # ``face`` was found on the array
        (found,) = tinyface.detect(image)
        assert found.box == face.box
        np.testing.assert_array_equal(found.landmarks, face.landmarks)
    with pytest.raises(TinyfaceError, match="min_face_size"):
        tinyface.detect(photo, min_face_size=5)


@pytest.mark.parametrize("size", [(112, 112), (112, 96), (96, 96)])
def test_align_output_sizes(size, photo, face):
    crop = tinyface.align(photo, face.landmarks, size=size)
    assert crop.shape == (*size, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(tinyface.align(photo, face, size=size), crop)


def test_align_default_size_and_bad_landmarks(photo, face):
    assert tinyface.align(PHOTO, face).shape == (112, 112, 3)
    with pytest.raises(InputError):
        tinyface.align(photo, face.landmarks[:4])
    with pytest.raises(InputError, match="no landmark template"):
        tinyface.align(photo, face, size=(100, 80))


def test_pipeline_aligns_to_the_model_input_size(pipeline, photo):
    class Narrow:                         # a model taking 112x96 crops
        info = _stub_model((112, 96)).info

        def embed(self, faces, flip=False):
            return np.array([[float(f.shape[0]), float(f.shape[1])] for f in faces], np.float32)

    narrow = FacePipeline(Narrow(), nets=pipeline.detector_options["nets"])
    np.testing.assert_array_equal(narrow.embed_photo(scaled(photo, 0.5)), [112, 96])


def _stub_model(size):
    class Info:
        input_size = size

    class Stub:
        info = Info()
    return Stub()


def test_bad_pipeline_options():
    with pytest.raises(TinyfaceError, match="input size is unknown"):
        FacePipeline(_stub_model(None))
    with pytest.raises(InputError, match="no landmark template"):
        FacePipeline(_stub_model((112, 100)))
    with pytest.raises(TinyfaceError, match="scale_factor"):
        FacePipeline(_stub_model((112, 112)), scale_factor=2)
    with pytest.raises(TinyfaceError, match="min_face_size"):
        FacePipeline(_stub_model((112, 112)), min_face_size="big")
    with pytest.raises(TinyfaceError, match="max_side"):
        FacePipeline(_stub_model((112, 112)), max_side=0)
