"""Data loading speed before and after the v2 rework, as ratios in one process (issue 11, item 6).

Images: a generated folder of JPEGs (default 2,000, 320–500 px sides, like ImageNet's; each round a new slice)
through the training pipeline, in one process (per-core speed), then through a DataLoader with the old default
of 0 workers vs the new default (the machine's cores):
- before: the d8c3df1 pipeline, restated here — decode to float [0, 1], then RandomResizedCrop by
  F.interpolate on the float image, flip, normalise;
- after: `create_transform(cfg, train=True)` on the decoded uint8 (PIL) image — the same operations
  (bilinear, to compare like with like), then DeiT's full recipe (bicubic, RandAugment 2,9, random erasing 0.25)
  for information.
Videos: generated 300-frame clips (320×240 moving pattern + noise, mpeg4, a key frame every 12 frames), one
8-frame clip at stride 8
per read, centred (evaluation) and at a random offset (training):
- before: decoding from the first frame (the d8c3df1 reader); after: seeking to the clip (`read_frames`).
The timed rounds alternate before/after; the ratio of medians is reported.

    .venv/bin/python benchmarks/bench_data.py [--images 2000] [--videos 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

from vitkit.data import default_workers
from vitkit.data.config import create_transform, data_config
from vitkit.data.image_folder import ImageFolder, open_image
from vitkit.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from vitkit.data.video_folder import clip_indices, read_frames, video_frame_count


def _before_image(path: Path, size: int = 224) -> torch.Tensor:
    """The d8c3df1 training pipeline: float decode, float RandomResizedCrop (scale 0.35–1), flip, normalise."""
    x = torch.from_numpy(np.asarray(open_image(path)).copy()).float().div_(255.0).permute(2, 0, 1)
    H, W = x.shape[-2:]
    for _ in range(10):
        area = H * W * (0.35 + 0.65 * torch.rand(()).item())
        log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(()).item()
        w, h = round(math.sqrt(area * math.exp(log_r))), round(math.sqrt(area / math.exp(log_r)))
        if 0 < w <= W and 0 < h <= H:
            i, j = int(torch.randint(0, H - h + 1, ())), int(torch.randint(0, W - w + 1, ()))
            x = x[..., i:i + h, j:j + w]
            break
    x = F.interpolate(x[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    if torch.rand(()).item() < 0.5:
        x = x.flip(-1)
    return (x - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)


def _make_images(root: Path, n: int) -> list[Path]:
    g = np.random.default_rng(0)
    (root / "a").mkdir(parents=True)
    files = []
    for k in range(n):
        H, W = (int(v) for v in g.integers(320, 501, size=2))
        yy, xx = np.mgrid[0:H, 0:W]
        img = np.stack([128 + 90 * np.sin(xx / (9 + c) + yy / (13 + k % 7 + c)) for c in range(3)], -1)
        img = np.clip(img + g.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
        files.append(root / "a" / f"{k}.jpg")
        Image.fromarray(img).save(files[-1], quality=90)
    return files


def _make_videos(root: Path, n: int, frames: int = 300) -> list[Path]:
    import av

    g = np.random.default_rng(1)
    root.mkdir(parents=True)
    files = []
    for k in range(n):
        files.append(root / f"v{k}.mp4")
        with av.open(str(files[-1]), mode="w") as out:
            stream = out.add_stream("mpeg4", rate=30)
            stream.height, stream.width, stream.pix_fmt = 240, 320, "yuv420p"
            stream.codec_context.gop_size = 12
            stream.bit_rate = 2_000_000  # about what a 320×240 camera clip carries: decoding is real work
            yy, xx = np.mgrid[0:240, 0:320]
            for t in range(frames):  # a moving pattern plus fresh noise: every frame costs real decoding work
                img = np.stack([128 + 80 * np.sin((xx + 3 * t) / (11 + c) + yy / 17) for c in range(3)], -1)
                img = np.clip(img + g.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
                for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
    return files


def _alternate(runs: dict[str, callable], rounds: int) -> dict[str, float]:
    """Median seconds per call of each run (called with the round number), the runs alternating in every round
    (order flipped each round)."""
    times = {k: [] for k in runs}
    names = list(runs)
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            runs[k](r)
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


class _BeforeFolder(Dataset):
    def __init__(self, folder: ImageFolder):
        self.folder = folder

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i: int):
        path, label = self.folder.samples[i]
        return _before_image(path), label


def bench_images(root: Path, n: int, rounds: int) -> None:
    _make_images(root / "images", n)
    like = dict(data_config("deit_small_patch16_224"), interpolation="bilinear")
    after = ImageFolder(root / "images", transform=create_transform(like, train=True))
    before = _BeforeFolder(after)
    deit = create_transform("deit_small_patch16_224", train=True, randaugment="rand-m9-mstd0.5-inc1", reprob=0.25)
    per = max(1, n // rounds)
    part = [range(r * per, (r + 1) * per) for r in range(rounds)]  # every round its own slice of the folder
    workers = default_workers(str(root / "images"))

    def load(ds, r, num_workers):
        for _ in DataLoader(Subset(ds, part[r]), batch_size=32, num_workers=num_workers):
            pass

    runs = {
        "before": lambda r: [before[i] for i in part[r]],
        "after": lambda r: [after[i] for i in part[r]],
        "after, DeiT recipe": lambda r: [deit(open_image(after.samples[i][0])) for i in part[r]],
        "before, DataLoader 0 workers": lambda r: load(before, r, 0),
        f"after, DataLoader {workers} workers": lambda r: load(after, r, workers),
    }
    [before[i] for i in range(5)], [after[i] for i in range(5)]  # warm-up
    med = _alternate(runs, rounds)
    print(f"images ({n} JPEGs, {per} per round, {rounds} rounds; the default --workers is {workers} here):")
    for k, t in med.items():
        print(f"  {k:30s} {per / t:8.1f} images/s   ({med['before'] / t:.2f}x before)")


def bench_videos(root: Path, n: int, rounds: int, num_frames: int = 8, stride: int = 8, repeats: int = 5) -> None:
    files = _make_videos(root / "videos", n)
    total = video_frame_count(files[0])

    def reads(seek: bool, train: bool):
        return lambda r: [read_frames(f, clip_indices(total, num_frames, stride, train=train), seek=seek)
                        for _ in range(repeats) for f in files]

    runs = {"before, centred": reads(False, False), "after, centred": reads(True, False),
            "before, random offset": reads(False, True), "after, random offset": reads(True, True)}
    med = _alternate(runs, rounds)
    print(f"videos ({n} × {total} frames 320×240, clips of {num_frames} frames at stride {stride}):")
    for k, t in med.items():
        base = med["before, " + k.split(", ")[1]]
        print(f"  {k:22s} {n * repeats / t:8.1f} clips/s   ({base / t:.2f}x before)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--rounds", type=int, default=7)
    args, _ = p.parse_known_args()  # `benchmarks/run.py` passes the model benchmarks' flags too
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        bench_images(Path(tmp), args.images, args.rounds)
        bench_videos(Path(tmp), args.videos, args.rounds)


if __name__ == "__main__":
    main()
