"""``bench pipeline``: the naive facenet-pytorch loop against this pipeline, on the same images.

Naive (facenet-pytorch's README way): ``mtcnn(img)`` then ``resnet(crop.unsqueeze(0))``, one image at a
time, one face per image. This pipeline: MTCNN on batches of equal-sized images, every face aligned,
the embedder on batches of faces. Both use the same device and weights.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ..errors import FaceDemoError
from ..pipeline import Pipeline
from ..settings import SHARED_LFW, Settings
from ..vision.images import list_images


def bench_images(folder: str | None, limit: int) -> list[Path]:
    root = Path(folder) if folder else SHARED_LFW
    if not root.is_dir():
        raise FaceDemoError(f"No image folder at {root}: pass --images DIR.")
    paths = list_images(root)
    if not paths:
        raise FaceDemoError(f"{root} holds no images.")
    step = max(1, len(paths) // limit)  # spread over many identities, deterministically
    return paths[::step][:limit]


def random_facenet_weights(folder: Path) -> Path:
    import torch
    from facenet_pytorch import InceptionResnetV1

    path = folder / "random-inception-resnet-v1.pt"
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(pretrained=None).state_dict(), path)
    return path


def bench_pipeline(images: str | None, limit: int, model: str, device: str | None) -> dict:
    import torch
    from facenet_pytorch import MTCNN
    from PIL import Image

    paths = bench_images(images, limit)
    settings = Settings.from_env(device=device)
    weights_note = "real weights"
    with tempfile.TemporaryDirectory() as tmp:
        if model.startswith("facenet"):
            probe = Pipeline(settings)
            if not probe.models()[[s.name for s in probe.models()].index(model)].available:
                settings = Settings.from_env(device=device, facenet_weights={model: str(random_facenet_weights(Path(tmp)))})
                weights_note = "random weights (the real ones are not on this machine; timings do not depend on weight values)"
        pipeline = Pipeline(settings)
        embedder = pipeline.embedder(model)  # load before timing, as both sides do
        dev = pipeline.device

        # Naive: facenet-pytorch's README loop. For dlib the "resnet" call is one unbatched descriptor.
        mtcnn = MTCNN(image_size=embedder.spec.input_size, margin=embedder.spec.crop_margin, device=dev.device)
        naive_faces = 0
        start = time.perf_counter()
        for path in paths:
            img = Image.open(path).convert("RGB")
            crop = mtcnn(img)
            if crop is None:
                continue
            if model.startswith("facenet"):
                with torch.no_grad():
                    embedder.module(crop.unsqueeze(0).to(dev.device, dtype=torch.float16 if dev.fp16 else torch.float32))
            else:
                face = ((crop.permute(1, 2, 0).numpy() * 128 + 127.5).clip(0, 255)).astype("uint8")
                embedder.embed([Image.fromarray(face)])
            naive_faces += 1
        naive_s = time.perf_counter() - start

        start = time.perf_counter()
        results = pipeline.analyze_many([str(p) for p in paths], model)
        ours_s = time.perf_counter() - start
        ours_faces = sum(len(r.faces) for r in results)

    naive_fps, ours_fps = naive_faces / naive_s, ours_faces / ours_s
    report = {
        "model": model,
        "weights": weights_note,
        "device": dev.description,
        "images": len(paths),
        "naive": {"faces": naive_faces, "seconds": round(naive_s, 2), "faces_per_s": round(naive_fps, 2), "images_per_s": round(len(paths) / naive_s, 2)},
        "pipeline": {"faces": ours_faces, "seconds": round(ours_s, 2), "faces_per_s": round(ours_fps, 2), "images_per_s": round(len(paths) / ours_s, 2)},
        "speedup_images_per_s": round((len(paths) / ours_s) / (len(paths) / naive_s), 2),
    }
    report["text"] = (
        f"{len(paths)} images, model {model} ({weights_note}), device {dev.description}\n"
        f"  naive facenet-pytorch loop : {naive_faces} faces in {naive_s:.1f} s = {naive_fps:.1f} faces/s, {len(paths) / naive_s:.1f} images/s (one face per image, margin crop)\n"
        f"  facedemo pipeline          : {ours_faces} faces in {ours_s:.1f} s = {ours_fps:.1f} faces/s, {len(paths) / ours_s:.1f} images/s (every face, aligned, batched)\n"
        f"  ratio (images/s)           : {report['speedup_images_per_s']}x"
    )
    return report
