"""Named, seeded image degradations: the conditions a model is measured under (blur, darkness, low
resolution, JPEG, sunglasses, a mask, grayscale, noise) and that fine-tuning can target.

A condition is data: a name, what it does, and one parameter per severity level (1 = mild, 5 = harsh).
``degrade(image, "blur", 3, seed=...)`` always returns the same pixels for the same arguments, so cached
evaluations stay valid and a training run can be repeated. Degradations apply to a whole photo *before*
detection (so a lost face counts against the model), or to an aligned face chip during fine-tuning; the
occluding bands need to know where the eyes and the mouth are, which ``FaceLayout`` says for either case.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from zlib import crc32

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import InvalidParameterError

# Sizes in these tables are for a 250-pixel photo (LFW's size) and scale with the image's shorter side.
REFERENCE_SIDE = 250.0
SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEVERITIES = (1, 3, 5)


@dataclass(frozen=True)
class FaceLayout:
    """Where the face's parts sit, as fractions of the image's width and height."""

    eye_y: float  # the line through both eyes
    eye_left: float  # the outer corners' span on x (a little beyond the eye centres)
    eye_right: float
    nose_y: float
    mouth_y: float
    chin_y: float
    face_left: float
    face_right: float

    @classmethod
    def from_landmarks(cls, landmarks: Sequence[tuple[float, float]], size: tuple[int, int]) -> FaceLayout:
        """The layout of a face from its five landmarks (left eye, right eye, nose, mouth left, mouth right)
        in the pixel coordinates of an image of ``size`` (width, height)."""
        w, h = size
        (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = landmarks
        eye_gap = rx - lx
        mouth_y = (mly + mry) / 2
        return cls(
            eye_y=(ly + ry) / 2 / h,
            eye_left=(lx - 0.55 * eye_gap) / w,
            eye_right=(rx + 0.55 * eye_gap) / w,
            nose_y=ny / h,
            mouth_y=mouth_y / h,
            chin_y=min(1.0, (mouth_y + 0.9 * (mouth_y - (ly + ry) / 2)) / h),
            face_left=(lx - 0.8 * eye_gap) / w,
            face_right=(rx + 0.8 * eye_gap) / w,
        )


# The mean MTCNN landmarks of LFW's 250x250 photos (measured on 300 random photos), whose subject is
# centred: where the occlusions go when a whole LFW-style photo is degraded before detection.
LFW_LAYOUT = FaceLayout.from_landmarks(
    ((105.6, 113.7), (147.2, 112.6), (126.4, 137.7), (109.1, 159.8), (145.5, 159.0)), (250, 250)
)


@dataclass(frozen=True)
class Condition:
    name: str
    description: str
    unit: str  # what the per-severity parameter means
    levels: tuple[float, ...]  # the parameter at severity 1..5
    apply: Callable[[Image.Image, float, np.random.Generator, FaceLayout], Image.Image]

    def parameter(self, severity: int) -> float:
        return self.levels[severity - 1]


def _scale(image: Image.Image) -> float:
    return min(image.size) / REFERENCE_SIDE


def _blur(image, sigma, rng, layout):
    return image.filter(ImageFilter.GaussianBlur(radius=sigma * _scale(image)))


def _gamma(image, gamma, rng, layout):
    table = [round(255 * (v / 255) ** gamma) for v in range(256)]
    return image.point(table * len(image.getbands()))


def _exposure(image, stops, rng, layout):
    # Under-exposure: the sensor gathers 2**-stops of the light (linear light, then back to sRGB-ish gamma
    # 2.2), and the read noise that a dark photo carries becomes visible once a camera brightens it; here it
    # is left dark, as the user's photo is.
    linear = (np.asarray(image, dtype=np.float32) / 255.0) ** 2.2
    out = (linear * 2.0**-stops) ** (1 / 2.2)
    return Image.fromarray(np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _lowres(image, factor, rng, layout):
    w, h = image.size
    small = image.resize((max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BOX)
    return small.resize((w, h), Image.Resampling.BILINEAR)


def _jpeg(image, quality, rng, layout):
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality))
    return Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode)


def _band(image, top, bottom, left, right):
    out = image.copy()
    w, h = out.size
    ImageDraw.Draw(out).rectangle((left * w, top * h, right * w, bottom * h), fill=(0,) * len(out.getbands()))
    return out


def _sunglasses(image, height, rng, layout):
    # A black band over the eyes, ``height`` times the eye-to-mouth distance tall, centred on the eye line.
    half = height * (layout.mouth_y - layout.eye_y) / 2
    return _band(image, layout.eye_y - half, layout.eye_y + half, layout.eye_left, layout.eye_right)


def _mask(image, cover, rng, layout):
    # A mask from the chin up: ``cover`` = 1 reaches the nose tip, more reaches the eyes.
    top = layout.chin_y - cover * (layout.chin_y - layout.nose_y)
    return _band(image, top, layout.chin_y + 0.05, layout.face_left, layout.face_right)


def _grayscale(image, amount, rng, layout):
    gray = image.convert("L").convert(image.mode)
    return Image.blend(image, gray, amount)


def _noise(image, sigma, rng, layout):
    pixels = np.asarray(image, dtype=np.float32)
    noisy = pixels + rng.normal(0.0, sigma, size=pixels.shape).astype(np.float32)
    return Image.fromarray(np.clip(noisy + 0.5, 0, 255).astype(np.uint8))


CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition(
            "blur",
            "Gaussian blur (out of focus, motion)",
            "sigma in pixels of a 250-px photo",
            (1.0, 2.0, 3.0, 4.5, 6.0),
            _blur,
        ),
        Condition("dark", "darkened by a gamma curve (poor lighting)", "gamma", (1.5, 2.0, 2.5, 3.2, 4.0), _gamma),
        Condition(
            "underexposed",
            "under-exposed (too little light)",
            "stops below the right exposure",
            (1.0, 2.0, 3.0, 4.0, 5.0),
            _exposure,
        ),
        Condition(
            "lowres",
            "low resolution: downscaled, then upscaled back",
            "scale factor",
            (0.5, 0.35, 0.25, 0.16, 0.1),
            _lowres,
        ),
        Condition("jpeg", "JPEG compression artefacts", "JPEG quality", (30, 20, 12, 7, 3), _jpeg),
        Condition(
            "sunglasses",
            "a black band over the eyes",
            "band height / eye-to-mouth distance",
            (0.35, 0.5, 0.65, 0.8, 1.0),
            _sunglasses,
        ),
        Condition(
            "mask",
            "a black band over the lower face",
            "cover (1 = up to the nose tip)",
            (0.5, 0.75, 1.0, 1.25, 1.5),
            _mask,
        ),
        Condition(
            "grayscale", "colour removed", "fraction of the colour removed", (0.25, 0.5, 0.75, 0.9, 1.0), _grayscale
        ),
        Condition("noise", "Gaussian sensor noise", "sigma in grey levels", (8.0, 16.0, 24.0, 36.0, 50.0), _noise),
    )
}


def condition(name: str) -> Condition:
    try:
        return CONDITIONS[name]
    except KeyError:
        raise InvalidParameterError(f"Unknown condition '{name}'; choose from {', '.join(CONDITIONS)}.") from None


def check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in SEVERITIES:
        raise InvalidParameterError(
            f"A severity is a whole number from {SEVERITIES[0]} (mild) to {SEVERITIES[-1]} (harsh); got {severity!r}."
        )
    return int(severity)


def parse_condition(text: str, default_severity: int = 3) -> tuple[str, int]:
    """``"dark"`` or ``"dark:4"`` -> ``("dark", 4)``, with a sentence for anything else."""
    name, _, severity = text.partition(":")
    condition(name)
    if not severity:
        return name, default_severity
    try:
        return name, check_severity(int(severity))
    except ValueError:
        raise InvalidParameterError(f"'{text}': the severity after ':' is a whole number from 1 to 5.") from None


def degrade(
    image: Image.Image, name: str, severity: int, seed: int = 0, layout: FaceLayout = LFW_LAYOUT
) -> Image.Image:
    """``image`` (RGB) under condition ``name`` at ``severity`` (1-5); the same arguments give the same pixels."""
    spec = condition(name)
    severity = check_severity(severity)
    rng = np.random.default_rng([seed, severity, sum(map(ord, name))])
    return spec.apply(image.convert("RGB"), spec.parameter(severity), rng, layout)


def degradation_key(name: str, severity: int) -> str:
    """A short name for caches of degraded photos: the condition, the severity and its parameter, so that
    changing a condition's table never serves pixels made with the old one (e.g. ``blur5-p6``)."""
    spec = condition(name)
    severity = check_severity(severity)
    return f"{spec.name}{severity}-p{spec.parameter(severity):g}"


def photo_seed(path) -> int:
    """A seed that is the same for a photo wherever its folder lives: from its last two path parts
    (LFW's ``person/person_0001.jpg``), so two machines degrade a photo into the same pixels."""
    p = Path(path)
    return crc32(f"{p.parent.name}/{p.name}".encode())
