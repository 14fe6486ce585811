"""Every kind of input the loader must accept or refuse with a sentence."""

import io

import numpy as np
import pytest
from PIL import Image

from facedemo.errors import ImageError
from facedemo.vision.images import load_image


def _bytes(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def test_path_bytes_pil_and_numpy_agree(astronaut, tmp_path):
    path = tmp_path / "a.png"
    astronaut.save(path)
    expected = np.asarray(astronaut)
    for source in (path, str(path), path.read_bytes(), astronaut, np.asarray(astronaut)):
        image = load_image(source)
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I;16", "I", "F"])
def test_modes_become_rgb(astronaut, mode):
    if mode in ("I;16", "I", "F"):
        grey = np.asarray(astronaut.convert("L"), dtype=np.float64)
        scale = {"I;16": 257, "I": 1000, "F": 1 / 255}[mode]
        dtype = {"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]
        image = Image.fromarray((grey * scale).astype(dtype))
        if mode == "I;16":
            image = Image.fromarray((grey * scale).astype(np.uint16), mode="I;16")
    else:
        image = astronaut.convert(mode)
    out = load_image(image)
    assert out.mode == "RGB" and out.size == astronaut.size
    # Content survives: a real photo, not a flat or clipped-to-white picture.
    grey_out = np.asarray(out.convert("L"), dtype=np.float64)
    assert grey_out.std() > 20


def test_sixteen_bit_png_is_scaled_not_clipped(astronaut, tmp_path):
    grey = np.asarray(astronaut.convert("L"), dtype=np.uint16) * 257
    path = tmp_path / "sixteen.png"
    Image.fromarray(grey, mode="I;16").save(path)
    out = np.asarray(load_image(path).convert("L"), dtype=np.float64)
    reference = np.asarray(astronaut.convert("L"), dtype=np.float64)
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.99
    assert out.max() < 256 and out.mean() < 250  # clipping would turn it white


def test_transparent_pixels_go_on_white():
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert load_image(rgba).getpixel((5, 5)) == (255, 255, 255)


def test_exif_orientation_is_applied(astronaut):
    wide = astronaut.crop((0, 0, 512, 300))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = _bytes(wide, "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).size == (512, 300)
    assert load_image(data).size == (300, 512)


def test_pixel_cap_refuses_oversized_images(astronaut):
    with pytest.raises(ImageError, match="MP allowed"):
        load_image(_bytes(astronaut, "PNG"), max_pixels=100_000)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    # A 20000x20000 black PNG compresses to a few hundred kB but would need 400 MB to decode.
    path = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(path)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageError, match="too large|MP allowed"):
        load_image(path)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "not an image"),
        (b"hello, I am text", "not an image"),
        (b"%PDF-1.4 not a photo", "is a PDF; facedemo reads photos in JPEG"),
    ],
)
def test_non_images_get_a_sentence(payload, message):
    with pytest.raises(ImageError, match=message):
        load_image(payload)


def test_truncated_jpeg(astronaut):
    data = _bytes(astronaut, "JPEG")
    with pytest.raises(ImageError, match="truncated or damaged"):
        load_image(data[: len(data) // 3])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="does not exist"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_bad_arrays():
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 7), dtype=np.uint8))
    with pytest.raises(ImageError):
        load_image(np.zeros((0, 4, 3), dtype=np.uint8))
    with pytest.raises(ImageError):
        load_image(12345)
