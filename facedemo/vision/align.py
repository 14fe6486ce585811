"""Face alignment: a 5-point similarity transform from MTCNN landmarks to a model's canonical layout,
or facenet-pytorch's plain margin crop, so the two can be compared."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from .detect import Face

ALIGNMENTS = ("similarity", "crop", "native")

# Where MTCNN's 5 landmarks (left eye, right eye, nose, mouth's left and right corners) go in a model's
# input, as fractions of its side. FaceNet's and dlib's were derived by scripts/derive_templates.py on 300
# LFW photos; ArcFace's is insightface's reference template for its 112x112 crops (``arcface_dst``).
FACENET_TEMPLATE = ((0.3082, 0.3962), (0.6918, 0.3962), (0.5000, 0.5829), (0.3248, 0.7463), (0.6752, 0.7463))
DLIB_TEMPLATE = ((0.3144, 0.3012), (0.6856, 0.3012), (0.5000, 0.5199), (0.3400, 0.7055), (0.6600, 0.7055))
ARCFACE_112 = ((38.2946, 51.6963), (73.5318, 51.5014), (56.0252, 71.7366), (41.5493, 92.3655), (70.7299, 92.2041))
ARCFACE_TEMPLATE = tuple((x / 112.0, y / 112.0) for x, y in ARCFACE_112)
TEMPLATES = {"facenet": FACENET_TEMPLATE, "dlib": DLIB_TEMPLATE, "arcface": ARCFACE_TEMPLATE}


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama (1991), the estimator insightface and scikit-image use for 5-point alignment.
    Returns a 2x3 matrix ``M`` with ``dst ~= M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[0]
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / n
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / n
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - matrix[:, :2] @ src_mean
    return matrix


def align_face(image: Image.Image, face: Face, size: int, template: Sequence[tuple[float, float]]) -> Image.Image:
    """Warp ``image`` so the face's five landmarks land on ``template`` (given as fractions of ``size``)."""
    dst = np.asarray(template, dtype=np.float64) * size
    matrix = similarity_transform(np.asarray(face.landmarks), dst)
    # PIL wants the inverse map: output pixel -> input pixel.
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(full)[:2].ravel()
    return image.transform((size, size), Image.Transform.AFFINE, tuple(inverse), resample=Image.Resampling.BILINEAR)


def dlib_chip(image: Image.Image, face: Face, predictor, size: int = 150) -> Image.Image:
    """dlib's own alignment: its 5-point shape predictor run inside the MTCNN box, then
    ``dlib.get_face_chip`` (padding 0.25), the crop dlib's face descriptor was trained on."""
    import dlib

    pixels = np.ascontiguousarray(np.asarray(image.convert("RGB")))
    x1, y1, x2, y2 = (int(round(v)) for v in face.box)
    shape = predictor(pixels, dlib.rectangle(x1, y1, x2, y2))
    return Image.fromarray(dlib.get_face_chip(pixels, shape, size=size, padding=0.25))


def crop_face(image: Image.Image, face: Face, size: int, margin: float) -> Image.Image:
    """facenet-pytorch's ``extract_face``: the box grown by ``margin`` pixels (at output scale), clipped
    to the image, resized to a square. No rotation."""
    x1, y1, x2, y2 = face.box
    mx = margin * (x2 - x1) / max(size - margin, 1)
    my = margin * (y2 - y1) / max(size - margin, 1)
    box = (
        int(max(x1 - mx / 2, 0)),
        int(max(y1 - my / 2, 0)),
        int(min(x2 + mx / 2, image.width)),
        int(min(y2 + my / 2, image.height)),
    )
    if box[2] <= box[0] or box[3] <= box[1]:
        box = (0, 0, image.width, image.height)
    return image.crop(box).resize((size, size), Image.Resampling.BILINEAR)


def center_crop_face(image: Image.Image, fraction: float = 0.5) -> Face:
    """A pseudo-face for images where detection failed (the LFW protocol's fallback): the central
    ``fraction`` of the image, with landmarks placed where a centred frontal face has them."""
    w, h = image.size
    side = min(w, h) * fraction
    x1, y1 = (w - side) / 2, (h - side) / 2
    rel = ((0.32, 0.40), (0.68, 0.40), (0.50, 0.58), (0.36, 0.76), (0.64, 0.76))
    return Face(
        box=(x1, y1, x1 + side, y1 + side),
        score=0.0,
        landmarks=tuple((x1 + rx * side, y1 + ry * side) for rx, ry in rel),
    )
