"""Output images under concurrent requests: gradio caches each output image under a hash of its bytes, so
two requests with the same result write the same file; it must never be rewritten while it is served
(``bench load`` saw "peer closed connection without sending complete message body" on /identify)."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

gradio = pytest.importorskip("gradio")
from gradio import processing_utils  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from test_app import EXAMPLES, launch  # noqa: E402

from facedemo.ui.common import atomic_output_cache  # noqa: E402


def test_a_cached_output_is_replaced_by_a_rename_never_rewritten_in_place(tmp_path):
    atomic_output_cache()
    atomic_output_cache()  # twice is once
    assert processing_utils.save_pil_to_cache.facedemo_atomic
    image = Image.open(EXAMPLES / "hopper.jpg").convert("RGB")
    data = processing_utils.encode_pil_to_bytes(image, "webp")
    target = tmp_path / processing_utils.hash_bytes(data) / "image.webp"
    target.parent.mkdir()
    target.write_bytes(data[: len(data) // 2])  # a copy left half-written (the old in-place writer, killed)
    with open(target, "rb") as reader:  # a download of that file in progress
        old = os.fstat(reader.fileno()).st_ino
        path = processing_utils.save_pil_to_cache(image, str(tmp_path))
        assert path == str(target.resolve()) and target.read_bytes() == data
        assert os.stat(target).st_ino != old  # a new file took the name; the reader's stays as it was
        assert len(reader.read()) == len(data) // 2
    same = os.stat(target).st_ino
    assert processing_utils.save_pil_to_cache(image, str(tmp_path)) == path
    assert os.stat(target).st_ino == same  # the same bytes already there: not written again
    assert not [p for p in target.parent.iterdir() if p.name != "image.webp"]  # no temporary file left


def test_identical_verify_requests_at_once_all_download_their_images(settings, tmp_path):
    demo, _, url = launch(settings, tmp_path / "gallery")
    try:

        def one(_):
            client = Client(url, verbose=False)
            verdict, crops, _, result = client.predict(
                handle_file(str(EXAMPLES / "astronaut.jpg")),
                handle_file(str(EXAMPLES / "astronaut_2.jpg")),
                api_name="/verify",
            )
            return verdict, crops

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(one, range(8)))
    finally:
        demo.close()
    assert all("Same person" in verdict for verdict, _ in answers), answers
    sizes = {os.path.getsize(crops) for _, crops in answers}  # each client downloaded the whole image
    assert len(sizes) == 1 and sizes.pop() > 1000
