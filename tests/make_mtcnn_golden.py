"""Make the MTCNN reference data in tests/data/mtcnn/ with facenet-pytorch.

Run once, in a scratch environment outside the repository (facenet-pytorch
and torch are not dependencies of tinyface)::

    python3 -m venv /work/scratch-mtcnn
    /work/scratch-mtcnn/bin/pip install torch==2.14.1 torchvision==0.29.1
    /work/scratch-mtcnn/bin/pip install facenet-pytorch --no-deps
    /work/scratch-mtcnn/bin/pip install pillow numpy requests tqdm
    /work/scratch-mtcnn/bin/python tests/make_mtcnn_golden.py

(facenet-pytorch 2.6.0 pins numpy < 2 and torch < 2.3 but runs on numpy 2.4
and torch 2.14 for MTCNN; the pins are skipped with ``--no-deps``.)

It writes six collages of the public-domain astronaut photo
(bench/photos.py: scaled, mirrored and rotated copies, crowded and
overlapping) as JPEG files, reads each file back, and runs facenet-pytorch's
MTCNN on the decoded pixels (its own nets, whose weights tinyface ships as
ONNX), one thread:

* ``full``: min_face_size 20, the defaults (thresholds 0.6, 0.7, 0.7,
  factor 0.709);
* ``max_side`` (for POLICY_IMAGES): what tinyface's ``max_side=MAX_SIDE_TEST`` searches, i.e. the
  same pyramid without its levels finer than m·r (m = 12/20,
  r = MAX_SIDE_TEST / longer side): min_face_size 20 / 0.709^j, j levels
  dropped (see ``tinyface.face.mtcnn.pyramid_scales``).

``golden.json`` holds, per image and setting, facenet-pytorch's boxes as it
returns them (x1, y1, x2, y2, its 1-based frame: tinyface's ``Face.box`` + 1),
probabilities and landmarks (5 × (x, y), 0-based pixel centres).
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch
from facenet_pytorch import MTCNN
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "mtcnn"
sys.path.insert(0, str(ROOT / "bench"))
from photos import FACE_WIDTH, Paste, collage  # noqa: E402

MAX_SIDE_TEST = 320
FACTOR = 0.709
JPEG_QUALITY = 90

# name: (width, height, faces as (face width in px, x, y of the face's centre, mirrored, angle))
COLLAGES = {
    "crowd": (640, 480, [(110, 130, 150, False, 0), (80, 330, 120, True, 8), (64, 500, 140, False, -10),
                         (48, 230, 330, False, 0), (36, 400, 330, True, 15), (28, 540, 360, False, 0)]),
    "overlap": (480, 360, [(100, 190, 170, False, 0), (80, 300, 170, True, -6), (64, 380, 280, False, 10)]),
    "scales": (720, 360, [(24, 40, 200, False, 0), (34, 95, 200, True, 0), (48, 170, 200, False, 0),
                          (68, 280, 190, True, 0), (96, 430, 180, False, 0), (136, 640, 170, True, 0)]),
    "tilted": (512, 384, [(80, 100, 140, False, -25), (70, 250, 120, True, -12), (84, 410, 150, False, 12),
                          (76, 260, 290, True, 25)]),
    # a small face on the edge of a large one's box: the last NMS (0.7, over the smaller box) keeps one
    "nested": (480, 400, [(150, 240, 200, False, 0), (40, 284, 130, False, -35)]),
    "group": (960, 640, [(220, 230, 230, False, 0), (180, 520, 200, True, -8), (160, 760, 260, False, 6),
                         (150, 400, 460, True, 0), (140, 680, 500, False, -12)]),
}
# Images searched with max_side too: every face in them is at least 1.3x the smallest size then
# searched for.  In the others, faces near or below that size are found or missed by chance.
POLICY_IMAGES = ("overlap", "tilted", "group")


def dropped_levels(height, width, max_side):
    """j: how many of the pyramid's finest levels ``max_side`` drops (0.709^j <= r)."""
    r = max_side / max(height, width)
    j = 0
    while FACTOR ** j > r * (1 + 1e-9):
        j += 1
    return j


def detect(detector, image):
    boxes, probs, points = detector.detect(Image.fromarray(image), landmarks=True)
    if boxes is None:
        return {"boxes": [], "scores": [], "landmarks": []}
    return {"boxes": np.asarray(boxes, np.float64).tolist(),
            "scores": np.asarray(probs, np.float64).tolist(),
            "landmarks": np.asarray(points, np.float64).tolist()}


def main():
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    golden = {"generator": "facenet-pytorch MTCNN (tests/make_mtcnn_golden.py)",
              "max_side": MAX_SIDE_TEST, "images": {}}
    for name, (width, height, faces) in COLLAGES.items():
        pastes = [Paste(w / (FACE_WIDTH * 512), x, y, mirror, angle) for w, x, y, mirror, angle in faces]
        path = OUT / f"{name}.jpg"
        Image.fromarray(collage(width, height, pastes)).save(path, quality=JPEG_QUALITY)
        image = np.asarray(Image.open(path).convert("RGB"))
        j = dropped_levels(height, width, MAX_SIDE_TEST)
        record = {"file": path.name, "width": width, "height": height, "pasted_faces": len(faces)}
        settings = [("full", 20.0)] + ([("max_side", 20.0 / FACTOR ** j)] if name in POLICY_IMAGES else [])
        for setting, min_face in settings:
            detector = MTCNN(min_face_size=min_face, thresholds=[0.6, 0.7, 0.7], factor=FACTOR,
                             post_process=False, select_largest=False, keep_all=True, device="cpu")
            record[setting] = dict(detect(detector, image), min_face_size=min_face)
            print(f"{name}: {setting} (min face {min_face:.1f}): {len(record[setting]['boxes'])} faces")
        golden["images"][name] = record
    (OUT / "golden.json").write_text(json.dumps(golden, indent=1))
    print("wrote", OUT / "golden.json", f"({math.fsum(p.stat().st_size for p in OUT.iterdir()) / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
