"""The guards against enrolling the wrong person and the removal of one face (#33 item 1), through the real
dashboard's API with gradio_client, in public mode: what one visitor enrolls, lists and removes is theirs."""

from __future__ import annotations

import socket
from dataclasses import replace

import pytest

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402


def launch(settings, gallery_dir, public: bool = False):
    from facedemo.services import Services
    from facedemo.ui import build_app

    services = Services(replace(settings, gallery_dir=gallery_dir, public=public))
    demo = build_app(services)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, services, f"http://127.0.0.1:{port}/"


def lfw(shared_faces, person: str, *numbers: int):
    return [handle_file(str(shared_faces / "lfw" / person / f"{person}_{n:04d}.jpg")) for n in numbers]


@pytest.mark.slow
@pytest.mark.shared
def test_mixed_photos_a_known_face_and_one_face_removed_through_the_api(settings, shared_faces, tmp_path):
    demo, services, url = launch(settings, tmp_path / "gallery", public=True)
    try:
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        mixed = lfw(shared_faces, "Tony_Blair", 1, 2, 3) + lfw(shared_faces, "Serena_Williams", 1)
        with pytest.raises(Exception) as asked:
            alice.predict("Person 13", mixed, api_name="/enroll")
        assert (
            "'Serena_Williams_0001.jpg' does not look like the same person as the other 3 photos. "
            "Keep it, or leave it out? (send odd='keep' or odd='drop')" in str(asked.value)
        )
        assert alice.predict(api_name="/people")[-1] == []  # nothing stored while asking
        note, enrolled = alice.predict("Person 13", mixed, False, "drop", api_name="/enroll")
        assert len(enrolled["added"]) == 3 and [s["image"] for s in enrolled["skipped"]] == ["Serena_Williams_0001.jpg"]

        # Identify's panel: the face the gallery names is asked about, then enrolled when confirmed.
        probe = lfw(shared_faces, "Tony_Blair", 10)[0]
        *_, result = alice.predict(probe, api_name="/identify")
        assert result["faces"][0]["name"] == "Person 13"
        with pytest.raises(
            Exception, match=r"This face looks like Person 13 \(0\.\d\d\)\. Enroll it as Test Stranger anyway\?"
        ):
            alice.predict(probe, 0, "Test Stranger", api_name="/enroll_face")
        message = alice.predict(probe, 0, "Test Stranger", None, True, api_name="/enroll_face")
        assert "Enrolled face 1 as **Test Stranger**" in message

        # One face listed and removed; the others stay and still name the person.
        _, _, faces = alice.predict("Person 13", api_name="/faces")
        assert sorted(f["image"] for f in faces) == [
            "Tony_Blair_0001.jpg",
            "Tony_Blair_0002.jpg",
            "Tony_Blair_0003.jpg",
        ]
        with pytest.raises(Exception, match="Nobody called 'Person 13'"):  # another visitor's person is not theirs
            bob.predict("Person 13", api_name="/faces")
        with pytest.raises(Exception, match="Nobody called 'Person 13'"):
            bob.predict("Person 13", faces[0]["id"], True, api_name="/remove_face")
        with pytest.raises(Exception, match="Confirm the removal"):
            alice.predict("Person 13", faces[0]["id"], False, api_name="/remove_face")
        message, _ = alice.predict("Person 13", faces[0]["id"], True, api_name="/remove_face")
        assert f"Removed the face from **{faces[0]['image']}** from **Person 13**" in message
        _, _, left = alice.predict("Person 13", api_name="/faces")
        assert [f["id"] for f in left] == [f["id"] for f in faces[1:]]
        assert {p["name"]: p["images"] for p in alice.predict(api_name="/people")[-1]} == {
            "Person 13": 2,
            "Test Stranger": 1,
        }
        *_, result = alice.predict(lfw(shared_faces, "Tony_Blair", 20)[0], api_name="/identify")
        assert result["faces"][0]["name"] in ("Person 13", "Test Stranger")
    finally:
        demo.close()
