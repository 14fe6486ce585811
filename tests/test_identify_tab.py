"""Identify's boxes as the page draws them: gradio's AnnotatedImage masks, from a real group photo whose
edge face MTCNN boxes partly outside the photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
from facedemo.ui.identify_tab import shown_box  # noqa: E402

BBT2 = Path(__file__).resolve().parents[2] / "shared" / "faces" / "bbt_faceapi" / "_group_photos" / "bbt2.jpg"


def mask_alpha(image: Image.Image, box) -> np.ndarray:
    """The alpha channel of the mask gradio writes for one box."""
    data = gr.AnnotatedImage().postprocess((image, [(box, "face")]))
    return np.asarray(Image.open(data.annotations[0].image.path))[:, :, 3]


@pytest.mark.skipif(not BBT2.is_file(), reason="the bbt group photos are not in ../shared/faces")
def test_a_box_past_the_photos_edge_is_drawn_clipped_not_wrapped(pipeline):
    image = Image.open(BBT2).convert("RGB")
    faces = pipeline.detect(image)
    edge = [f for f in faces if f.box[0] < 0 or f.box[1] < 0 or f.box[2] > image.width or f.box[3] > image.height]
    assert edge, [f.box for f in faces]  # the photo has the case: a face cut by the edge
    box = edge[0].box
    raw = mask_alpha(image, tuple(int(round(v)) for v in box))
    clipped = shown_box(box, image.size)
    drawn = mask_alpha(image, clipped)
    x1, y1, x2, y2 = clipped
    assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
    outside = np.ones_like(drawn, dtype=bool)
    outside[y1:y2, x1:x2] = False
    assert drawn[~outside].any() and not drawn[outside].any()  # the mask stays inside the box
    assert raw[outside].any()  # gradio with the raw box: stray lines elsewhere in the photo
