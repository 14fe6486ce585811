"""What a visitor (or a deleted person) leaves on disk: nothing. Album crops and unpacked zips live in the
visitor's own scratch folder and go when they expire, or at the next start after a kill -9; a gallery's
condition fine-tune caches its degraded faces only for the run; a model fine-tuned on a person goes when
the person is deleted. Real photos, real MTCNN and dlib, real Chroma."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from facedemo.files import make_scratch, scratch_root
from facedemo.gallery import Gallery, open_store
from facedemo.gallery.store import FACES, PEOPLE
from facedemo.pipeline import Pipeline
from facedemo.services import Services, Visitors, usecases
from facedemo.training.finetune import finetune_gallery

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "facedemo" / "ui" / "examples"
CAST = ["amy", "bernadette", "howard", "leonard", "penny", "raj", "sheldon", "stuart"]


def test_a_visitors_album_and_import_folders_are_theirs_and_go_when_they_expire(settings, tmp_path):
    services = Services(replace(settings, public=True, gallery_dir=tmp_path / "gallery"))
    session = "visitor-with-an-album"
    namespace = Visitors.namespace(session)
    album = usecases.album(
        services.request(session), [EXAMPLES / "astronaut.jpg", EXAMPLES / "hopper.jpg"], "dlib-resnet"
    )
    assert album.workdir.parent == scratch_root() / namespace  # the visitor's own root, not a bare TMPDIR folder
    assert any(album.workdir.rglob("*.jpg"))  # the crops the page shows
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(EXAMPLES / "hopper.jpg", "people/Grace Hopper/hopper.jpg")
    report = services.gallery(session).import_archive(archive, "dlib-resnet")
    assert report.total == 1 and not list((scratch_root() / namespace).glob("import-*"))  # gone after the import
    assert services.visitors.expire(0.0) == [namespace]
    assert not (scratch_root() / namespace).exists() and not album.workdir.exists()


def test_scratch_folders_of_a_killed_process_are_purged_at_the_next_start(settings, tmp_path):
    """A process killed (SIGKILL) while unpacking leaves its folder; the next Services removes it, and never
    a folder of a process still running (this one's)."""
    code = (
        "import os, signal\n"
        "from facedemo.files import make_scratch\n"
        "folder = make_scratch('v' + 'cd' * 12, 'import')\n"
        "(folder / 'photo.jpg').write_bytes(b'unpacked face')\n"
        "print(folder, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert done.returncode == -signal.SIGKILL
    left = Path(done.stdout.strip())
    assert (left / "photo.jpg").is_file()
    mine = make_scratch(None, "album")
    try:
        Services(replace(settings, gallery_dir=tmp_path / "gallery"))
        assert not left.exists()
        assert mine.is_dir()  # a live process's folder is left alone
    finally:
        shutil.rmtree(mine, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.shared
def test_a_condition_finetune_leaves_no_cache_and_its_model_goes_with_a_trained_person(
    settings, shared_faces, tmp_path
):
    home = tmp_path / "home"
    pipeline = Pipeline(replace(settings, home=home))
    gallery = Gallery.open(pipeline, open_store(tmp_path / "gallery"), models=["dlib-resnet"])
    tree = tmp_path / "cast"
    for person in CAST:
        (tree / person).mkdir(parents=True)
        for photo in sorted((shared_faces / "bbt_faceapi" / person).glob("*.png"))[:4]:
            shutil.copy(photo, tree / person / photo.name)
    gallery.import_folder(tree, "dlib-resnet")
    result = finetune_gallery(gallery, "dlib-resnet", "cast-dark", epochs=3, augment="dark:3")
    # Before: the degraded faces' detections and embeddings stayed in FACEDEMO_HOME/cache, keyed by the
    # gallery's thumbnail paths, after the run and after the people were deleted.
    assert not list(home.rglob("*.npz")), "the fine-tune left its cache of the gallery's faces behind"
    assert not [p for p in (scratch_root() / "shared").glob(f"finetune-{os.getpid()}-*")]
    assert result.path.is_dir() and "cast-dark" in gallery.store.models()

    other = Gallery.open(pipeline, open_store(tmp_path / "other"), models=["dlib-resnet"])
    other.enroll("Someone Else", [EXAMPLES / "hopper.jpg"], "dlib-resnet")
    assert other.delete("Someone Else").models == ()  # not trained on this gallery's people: kept
    assert result.path.is_dir()

    done = gallery.delete("penny")
    assert done.models == ("cast-dark",) and "cast-dark" in done.text()
    assert not result.path.exists()
    assert "cast-dark" not in pipeline.user_models() and "cast-dark" not in gallery.store.models()
    names = gallery.store.collections.names()
    assert not [n for n in names if n.endswith((f"{FACES}.cast-dark", f"{PEOPLE}.cast-dark"))]
    assert all(key[0] != "cast-dark" for key in pipeline.loaded())


@pytest.mark.slow
def test_a_deleted_persons_uploads_leave_gradios_cache_and_uploads_expire_in_every_mode(settings, tmp_path):
    """The photo uploaded to enroll someone and the thumbnails the page served are copies in gradio's cache;
    deleting the person deletes them too, and outside public mode the cache expires (it never did)."""
    from gradio.utils import get_upload_folder
    from gradio_client import Client, handle_file
    from PIL import Image
    from test_app import launch

    from facedemo.vision.images import image_sha

    unique = tmp_path / "ada.jpg"  # bytes no other test uploads
    Image.open(EXAMPLES / "hopper.jpg").convert("RGB").rotate(1).save(unique, quality=91)
    demo, services, url = launch(settings, tmp_path / "gallery")
    try:
        assert demo.delete_cache is not None and demo.delete_cache[1] <= 86400
        client = Client(url, verbose=False)
        client.predict("Ada Cached", [handle_file(str(unique))], api_name="/enroll")
        client.predict(api_name="/people")  # the thumbnails, served through the cache
        cache = Path(get_upload_folder())
        uploaded = image_sha(unique)
        thumbs = {image_sha(p) for f in services.store.faces() for p in services.store.face_files(f.id)}

        def copies() -> list[Path]:
            found = []
            for p in cache.rglob("*"):
                if p.is_file():
                    try:
                        if image_sha(p) in thumbs | {uploaded}:
                            found.append(p)
                    except Exception:
                        continue
            return found

        assert copies(), "the test can fail: the upload is in gradio's cache before the delete"
        message, _ = client.predict("Ada Cached", True, api_name="/delete")
        assert "Deleted **Ada Cached**" in message
        assert copies() == []
    finally:
        demo.close()
