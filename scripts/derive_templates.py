"""Derive the 5-point alignment templates shipped in facedemo/models/registry.py.

A template is where MTCNN's five landmarks sit, on average, in a model's canonical input:
- dlib-resnet: dlib's own 150x150 chip (dlib.get_face_chip, padding 0.25, from dlib's 5-point
  shape predictor). We cut dlib's chip, run MTCNN on it and average the landmarks it finds.
- facenet-*: facenet-pytorch's margin crop (MTCNN box + margin 14, 160x160), which is what
  InceptionResnetV1 saw in training; the average landmark positions there make it an upright template.

Usage: python scripts/derive_templates.py ../shared/faces/lfw 300
"""

import random
import sys
from pathlib import Path

import dlib
import numpy as np

from facedemo.models.dlib_resnet import dlib_model_files
from facedemo.vision.align import crop_face
from facedemo.vision.detect import Detector, central_face
from facedemo.vision.images import load_image


def landmarks_in(detector, crop):
    """MTCNN's landmarks on a crop, found with the crop pasted into a black frame half its size wide:
    on the bare crop the face fills the picture and MTCNN's landmarks come out biased (by ~8% of the
    height for dlib's chips)."""
    from PIL import Image

    pad = crop.width // 2
    canvas = Image.new("RGB", (crop.width + 2 * pad, crop.height + 2 * pad))
    canvas.paste(crop, (pad, pad))
    faces = detector.detect(canvas)
    return np.asarray(faces[0].landmarks) - pad if len(faces) == 1 else None


def main(root: str, count: int) -> None:
    paths = sorted(Path(root).glob("*/*.jpg"))
    random.Random(0).shuffle(paths)
    detector = Detector("cpu", min_face_size=20, min_score=0.9)
    predictor = dlib.shape_predictor(str(dlib_model_files()["shape_predictor"]))
    dlib_pts, facenet_pts = [], []
    for path in paths[:count]:
        image = load_image(path)
        faces = detector.detect(image)
        if not faces:
            continue
        face = central_face(faces, image.size)
        rect = dlib.rectangle(*[int(v) for v in face.box])
        shape = predictor(np.asarray(image), rect)
        chip = dlib.get_face_chip(np.asarray(image), shape, size=150, padding=0.25)
        found = landmarks_in(detector, load_image(chip))
        if found is not None:
            dlib_pts.append(found / 150)
        found = landmarks_in(detector, crop_face(image, face, 160, 14))
        if found is not None:
            facenet_pts.append(found / 160)
    for name, pts in (("dlib-resnet", dlib_pts), ("facenet", facenet_pts)):
        mean = np.mean(pts, axis=0)
        # Symmetrise left/right so the template is upright and centred.
        mirrored = mean[[1, 0, 2, 4, 3]].copy()
        mirrored[:, 0] = 1 - mirrored[:, 0]
        sym = (mean + mirrored) / 2
        print(f"{name} ({len(pts)} faces): " + ", ".join(f"({x:.4f}, {y:.4f})" for x, y in sym))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300)
