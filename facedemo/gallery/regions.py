"""A face's pictures kept beside the store: the thumbnail shown in lists, and the region (the face with a
margin and its landmarks) from which a model that comes later embeds the face again without the photo."""

from __future__ import annotations

from datetime import datetime, timezone

from PIL import Image

from ..vision.detect import Face
from .store import FaceRecord, Region


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def face_thumbnail(image: Image.Image | None, face: Face, margin: float = 0.3) -> Image.Image | None:
    """A square centred on the face, its side the box's longer side with up to ``margin`` of it on each side;
    where the face itself crosses the photo's edge the missing part is grey, so the face stays centred and a
    tile shows the whole face (a crop clipped to the photo, then cut square by the page, showed foreheads and
    hair)."""
    if image is None:
        return None
    x1, y1, x2, y2 = face.box
    longer = max(x2 - x1, y2 - y1)
    if longer < 1:
        return None
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    # The margin shrinks to what the photo holds around the face (a tight head crop is not framed in grey),
    # never below the face itself.
    room = 2 * min(cx, image.width - cx, cy, image.height - cy)
    side = max(longer, min(longer * (1 + 2 * margin), room))
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = int(round(side))
    tile = Image.new("RGB", (size, size), (128, 128, 128))
    box = (max(0, left), max(0, top), min(image.width, left + size), min(image.height, top + size))
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    tile.paste(image.convert("RGB").crop(box), (box[0] - left, box[1] - top))
    return tile


def region_face(record: FaceRecord) -> Face:
    """A registry face in its stored region's pixels."""
    region = record.region
    x1, y1 = region.to_region(record.box[0], record.box[1])
    x2, y2 = region.to_region(record.box[2], record.box[3])
    landmarks = tuple(region.to_region(x, y) for x, y in record.landmarks)
    return Face((x1, y1, x2, y2), 1.0, landmarks)


def face_region(image: Image.Image, face: Face, margin: float = 0.6, longest: int = 224):
    """The face with ``margin`` of its size around it on every side (room for every model's alignment),
    clipped to the photo and shrunk so that the face is at most ``longest`` pixels: what a model that comes
    later needs to embed the face again. Returns (region image, ``store.Region``)."""
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1, 1.0)
    left, top = max(0, int(x1 - margin * side)), max(0, int(y1 - margin * side))
    right, bottom = min(image.width, int(x2 + margin * side) + 1), min(image.height, int(y2 + margin * side) + 1)
    crop = image.crop((left, top, max(right, left + 1), max(bottom, top + 1)))
    scale = min(1.0, longest / side)
    if scale < 1.0:
        crop = crop.resize(
            (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.LANCZOS
        )
    return crop, Region(float(left), float(top), scale)
