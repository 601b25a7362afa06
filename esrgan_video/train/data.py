"""Training data: sources (videos, image folders, paired LR/HR), held-out frames, seeded patch sampling.

Frames come through the project's own reader and colour code: videos through
``esrgan_video.video.reader.open_input(...).frames()`` and the streaming core's frame transform
(``esrgan_video.frames.transform.FrameTransform`` without a model, to float RGB) with the stream's resolved
``ColorSpec`` (so training sees the RGB inference sees), images through the still-image reader.
They are kept in memory as 8-bit RGB (``3×H×W`` uint8), cropped at the bottom/right to a multiple of
``2 × scale`` (so LR crops align and 4:2:0 video encoding works).

Held out: the last ``held_out`` fraction of each source's frames (at least ``min_held_out``) is never trained
on; validation crops and the preview grid come from them.

Sampling: one seeded ``torch.Generator`` draws, per patch, a training frame (uniformly), a scale-aligned
position, a flip/rotation and a 63-bit degradation seed; its state is the data position a checkpoint saves.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import InputError
from ..models.keys import list_keys
from ..video.images import IMAGE_EXTENSIONS



@dataclass
class Source:
    """One HR source's frames in memory (and, for paired data, the matching LR frames)."""

    path: str
    hr: list[torch.Tensor]
    """3×H×W uint8 frames, in source order."""
    keys: list
    """Per frame: its media time in seconds (videos) or file name stem (images)."""
    lr: list[torch.Tensor] | None = None
    train: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)
    rejected: list[tuple[int, float]] = field(default_factory=list)
    """Paired data: (frame, PSNR) of pairs that did not match."""


# --------------------------------------------------------------------------- reading


def _crop(t: torch.Tensor, box: tuple[int, int, int, int] | None, path: str) -> torch.Tensor:
    if box is None:
        return t
    x, y, w, h = box
    if x + w > t.shape[-1] or y + h > t.shape[-2]:
        raise InputError(f"{path}: crop {w}x{h}+{x}+{y} does not fit its {t.shape[-1]}x{t.shape[-2]} frames")
    return t[:, y:y + h, x:x + w]


def read_video(path: str, *, max_frames: int, crop=None, max_bytes: int | None = None,
               notice: Callable[[str], None] | None = None) -> tuple[list[torch.Tensor], list[Fraction]]:
    """Every frame of a video as 3×H×W uint8 RGB, with media times; evenly thinned to at most ``max_frames``
    frames and at most ``max_bytes`` of frames (at least 8 frames), over the frames the packet index counts (a
    variable-rate file's duration × rate overcounts them). Frames are turned upright by the display matrix (a
    quarter-turn rotation), as a player shows them, before ``crop``. ``notice`` receives the reader's one-line
    notices (frames skipped as damaged, interlacing, HDR, a guessed rate) and one when the samples have more than 8
    bits, one when the frames carry alpha (not read)."""
    from ..frames.pixel_formats import pixel_format
    from ..frames.transform import FrameFormat, FrameTransform
    from ..video.reader import TRAINING_INTERLACED, open_input

    frames, times = [], []
    with open_input(path, notice=notice) as inp:
        info = inp.info
        fmt = pixel_format(info.pix_fmt)
        if notice is not None:
            for msg in inp.notices(interlaced_why=TRAINING_INTERLACED):  # the reader's rule and its wording
                notice(msg)
            if fmt.bits > 8:
                notice(f"{path}: {fmt.bits}-bit video ({info.pix_fmt}); training keeps its frames as 8-bit RGB, "
                       "so the model learns from them rounded to 8 bits")
            if fmt.alpha:  # the transform to RGB leaves it out, as the still reader does an image's
                notice(f"{path}: the video has an alpha channel ({info.pix_fmt}); training reads its colour only "
                       "(what lies under transparent parts is trained on as it is stored)")
        to_rgb = FrameTransform(None, src=FrameFormat(fmt, info.color.resolved(info.width, info.height, fmt)),
                                dst=FrameFormat.float_rgb())  # the streaming core's colour code, to RGB
        turns = _quarter_turns(info.rotation)
        if notice is not None and info.rotation and turns is None:
            notice(f"{path}: a {info.rotation:g}° display rotation, not a quarter turn; training reads its frames "
                   "as stored")
        elif notice is not None and turns:
            notice(f"{path}: a {turns * 90}° display rotation; training reads its frames upright, "
                   "as a player shows them (and as images are read, by their EXIF orientation)")
        if max_bytes is not None:
            w, h = (crop[2], crop[3]) if crop else (info.width, info.height)
            max_frames = min(max_frames, max(8, int(max_bytes // (3 * w * h))))
        count = info.frame_count
        if count is None:  # estimated from the duration: count the packets (one demux pass, no decoding)
            count = len(inp.packet_index().media_times()) or inp.frame_count_in()
        step = max(1, math.ceil(count / max_frames)) if count else 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, frame in enumerate(inp.frames()):
                if len(frames) >= max_frames:
                    if not count or i >= count:
                        break
                    continue  # the last few frames are decoded, not kept: the run's end tells the damage it met
                if i % step:
                    continue
                rgb = torch.stack(to_rgb([torch.from_numpy(np.ascontiguousarray(p)) for p in frame.planes]))
                rgb = torch.round(rgb * 255).to(torch.uint8)
                if turns:  # upright: the player's counter-clockwise turn
                    rgb = torch.rot90(rgb, turns, dims=(-2, -1))
                # its own storage: a crop's view held the whole frame, over the max_bytes counted for the crop
                frames.append(_crop(rgb, crop, path).contiguous())
                times.append(inp.media_time(frame.pts, frame.time_base))
    return frames, times


def _quarter_turns(rotation: float) -> int | None:
    """A display rotation (counter-clockwise degrees) as counter-clockwise quarter turns 0–3; None when it is not
    a multiple of 90°."""
    turns = rotation / 90
    return round(turns) % 4 if abs(turns - round(turns)) < 1e-6 else None


def read_still(path: str | Path, crop=None) -> torch.Tensor:
    """One image as 3×H×W uint8 RGB through the upscaler's still-image reader (upright, as its EXIF orientation
    says; 16-bit images rounded to 8 bits as the image writer rounds them)."""
    return _read_still(path, crop)[0]


def _read_still(path: str | Path, crop=None) -> tuple[torch.Tensor, int, bool]:
    """:func:`read_still`, the image's bits per sample (8 or 16) and whether it has an alpha channel (not read)."""
    from ..video.images import read_image, round_to_8bit
    rgb, alpha, bits = read_image(path)
    if bits > 8:
        rgb = round_to_8bit(rgb)
    t = torch.from_numpy(np.ascontiguousarray(rgb))
    # the crop copied out (not the whole image, then a view of it that held the whole image)
    return _crop(t.permute(2, 0, 1), crop, str(path)).contiguous(), bits, alpha is not None


def _tell_stills(path: str, read: list[tuple[torch.Tensor, int, bool]], notice) -> None:
    """The notices about stills read for training: 16-bit samples rounded to 8, alpha channels left out."""
    if notice is None:
        return
    deep, see_through = sum(bits > 8 for _, bits, _ in read), sum(a for _, _, a in read)
    one = len(read) == 1
    if deep:
        notice(f"{path}: " + ("a 16-bit image; training keeps it as 8-bit RGB, so the model learns from it" if one
                              else f"{deep} of {len(read)} images have 16-bit samples; training keeps them as 8-bit "
                              "RGB, so the model learns from them") + " rounded to 8 bits")
    if see_through:
        notice(f"{path}: " + ("the image has an alpha channel; training reads its colour only" if one else
                              f"{see_through} of {len(read)} images have an alpha channel; training reads their "
                              "colour only") + " (what lies under transparent parts is trained on as it is stored)")


def _folder_files(path: Path) -> tuple[list[Path], list[Path]]:
    """A folder's image files and its videos (by the extensions a batch run picks up), each sorted by name, from
    one listing: an image folder is one source of stills, so its videos are not read with it."""
    from ..batch.inputs import VIDEO_EXTENSIONS

    files = sorted(p for p in path.iterdir() if p.is_file())
    return ([p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS],
            [p for p in files if p.suffix.lower() in VIDEO_EXTENSIONS])


def read_source(path: str, *, max_frames: int, crop=None, max_bytes: int | None = None,
                notice: Callable[[str], None] | None = None) -> tuple[list[torch.Tensor], list]:
    """A video file, an image folder or one image → (frames, keys). InputError naming the path when nothing
    can be read. ``notice``: the reader's one-line notices, one for samples of more than 8 bits (kept as 8), one
    for videos in an image folder (not read: an image folder is one source of stills)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{path}: no such file or folder")
    if p.is_dir():
        files, videos = _folder_files(p)
        named = list_keys((v.name for v in videos), 3)  # [a.mp4, b.mp4, c.mp4 and 2 more]
        if not files:
            held = f"; it holds {len(videos)} video(s) {named}: give videos to --data one by one" \
                if videos else ""
            raise InputError(f"{path}: no images found (looked for {', '.join(IMAGE_EXTENSIONS)}){held}")
        if videos and notice is not None:
            notice(f"{path}: {len(videos)} video(s) in this image folder are not read {named}; an image "
                   "folder is one source of stills: give videos to --data one by one")
        if len(files) > max_frames:
            files = files[:: math.ceil(len(files) / max_frames)]
        read = [_read_still(f, crop) for f in files]
        _tell_stills(path, read, notice)
        return [t for t, _, _ in read], [f.stem for f in files]
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        read = [_read_still(p, crop)]
        _tell_stills(path, read, notice)
        return [read[0][0]], [p.stem]
    frames, times = read_video(path, max_frames=max_frames, crop=crop, max_bytes=max_bytes, notice=notice)
    if not frames:
        raise InputError(f"{path}: no frames found")
    return frames, times


def read_stills(paths: tuple[str, ...], *, max_frames: int, crop=None,
                notice: Callable[[str], None] | None = None) -> tuple[list[torch.Tensor], list]:
    """Image files given one by one → (frames, keys: the paths as given), one source of stills as a folder's
    images are (thinned evenly to ``max_frames``), with the notices :func:`read_source` gives a folder."""
    for f in paths:
        if not Path(f).exists():
            raise InputError(f"{f}: no such file or folder")
    if len(paths) > max_frames:
        paths = paths[:: math.ceil(len(paths) / max_frames)]
    read = [_read_still(f, crop) for f in paths]
    _tell_stills(stills_label(paths), read, notice)
    return [t for t, _, _ in read], list(paths)


def stills_label(paths: tuple[str, ...]) -> str:
    """How messages name the image files given to --data one by one: the file, or the first and how many more."""
    return paths[0] if len(paths) == 1 else f"{paths[0]} (and the {len(paths) - 1} more images given one by one)"


def _is_image_file(path: str) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS and not Path(path).is_dir()


def group_stills(data, lr_data) -> list[tuple]:
    """``--data`` entries (with their ``--lr-data`` partners, or None) → the sources: each video and image folder
    its own, the image files given one by one together one source of stills (in the order given, at the first
    one's place; one image alone cannot be a source: validation holds out at least two frames of each), as a
    folder's images are. Their LR partners must be image files too; they pair one to one, in the order given."""
    lr_data = list(lr_data) if lr_data else [None] * len(data)
    units: list = []
    stills, lr_stills, at = [], [], None
    for hr, lr in zip(data, lr_data):
        if not _is_image_file(hr):
            units.append((hr, lr))
            continue
        if lr is not None and not _is_image_file(lr):
            raise InputError(f"{lr}: {'an image folder' if Path(lr).is_dir() else 'a video'} cannot pair with the "
                             f"image {hr} (an image given one by one pairs with one LR image; pair videos with "
                             "videos, image folders with image folders)")
        if at is None:
            at = len(units)
            units.append(None)
        stills.append(hr)
        lr_stills.append(lr)
    if at is not None:
        units[at] = (tuple(stills), tuple(lr_stills) if lr_stills[0] is not None else None)
    return units


def _sample_aspect(entry) -> Fraction | None:
    """A video's sample aspect ratio as its frames are read (upright: a quarter turn swaps it); None for images."""
    if isinstance(entry, tuple) or Path(entry).is_dir() or Path(entry).suffix.lower() in IMAGE_EXTENSIONS:
        return None
    from ..video.reader import open_input

    with open_input(entry) as inp:
        sar, turns = inp.info.sample_aspect_ratio, _quarter_turns(inp.info.rotation)
    return 1 / Fraction(sar) if sar and turns and turns % 2 else sar


def trim_to_multiple(frames: list[torch.Tensor], multiple: int) -> list[torch.Tensor]:
    """Crop each frame at the bottom/right to a multiple of ``multiple``."""
    out = []
    for f in frames:
        h, w = f.shape[-2:]
        out.append(f[:, : h - h % multiple, : w - w % multiple])
    return out


def split_held_out(n: int, fraction: float, minimum: int) -> tuple[list[int], list[int]]:
    """(training indices, held-out indices): the last ``max(minimum, ceil(fraction · n))`` frames are held out."""
    held = max(minimum, math.ceil(fraction * n))
    if n - held < 1:
        return [], list(range(n))
    return list(range(n - held)), list(range(n - held, n))


# --------------------------------------------------------------------------- paired data


def match_pairs(hr_keys: list, lr_keys: list, *, offset: float = 0.0) -> list[int | None]:
    """For each HR key the index of the matching LR frame (None when there is none): file stems match
    exactly; times match the nearest LR time (after adding ``offset``) within half the LR frame spacing."""
    if hr_keys and isinstance(hr_keys[0], str):
        where = {k: i for i, k in enumerate(lr_keys)}
        return [where.get(k) for k in hr_keys]
    lr_t = [float(t) + offset for t in lr_keys]
    if not lr_t:
        return [None] * len(hr_keys)
    gaps = [b - a for a, b in zip(lr_t, lr_t[1:]) if b > a]
    tol = 0.5 * (min(gaps) if gaps else 1.0)
    import bisect

    out: list[int | None] = []
    for t in (float(k) for k in hr_keys):
        j = bisect.bisect_left(lr_t, t)
        best = min((c for c in (j - 1, j) if 0 <= c < len(lr_t)), key=lambda c: abs(lr_t[c] - t))
        out.append(best if abs(lr_t[best] - t) <= tol + 1e-9 else None)
    return out


def pair_psnr(hr: torch.Tensor, lr: torch.Tensor, scale: int) -> float:
    """PSNR (dB) of the bicubic-downscaled HR frame against the LR frame (both 3×H×W uint8)."""
    from .degradations import bicubic_down
    from ..quality import psnr

    down = bicubic_down(hr.unsqueeze(0).float() / 255.0, scale)
    return psnr(down, lr.unsqueeze(0).float() / 255.0)


# --------------------------------------------------------------------------- loading everything


def load_sources(config, scale: int, patch: int, *, notice=print,
                 smaller_patch: str = "use a smaller --patch") -> list[Source]:
    """Read every source of ``config``, split held-out frames, match and check pairs. InputError for: no frames,
    frames smaller than the patch (``smaller_patch`` says what to do), an HR/LR scale mismatch, paired data where
    nothing matches."""
    sources = []
    multiple = 2 * scale
    for entry, lr_entry in group_stills(config.data, config.lr_data):
        max_bytes = None if lr_entry is not None else int(config.memory_gb * 2**30)  # pairs: keep every match
        if isinstance(entry, tuple):  # image files given one by one: one source of stills
            path = stills_label(entry)
            hr, keys = read_stills(entry, max_frames=config.max_frames, crop=config.hr_crop, notice=notice)
        else:
            path = entry
            hr, keys = read_source(path, max_frames=config.max_frames, crop=config.hr_crop, max_bytes=max_bytes,
                                   notice=notice)
        for f, key in zip(hr, keys):
            if min(f.shape[-2:]) < patch:  # an image folder's stills differ in size: name the one (its stem, the key)
                where, what = (key, "the image is") if isinstance(entry, tuple) else (
                    path, f"image {key} is" if Path(path).is_dir() else "frames are")
                raise InputError(f"{where}: {what} {f.shape[-1]}x{f.shape[-2]}, smaller than the {patch}-px "
                                 f"training patch ({smaller_patch})")
        src = Source(path, trim_to_multiple(hr, multiple), keys)
        if lr_entry is not None:
            if isinstance(entry, tuple):  # one to one, in the order given: each LR image keyed by its HR partner
                lr_path = stills_label(lr_entry)
                lr, _ = read_stills(lr_entry, max_frames=10**9, crop=config.lr_crop, notice=notice)
                lr_keys = list(entry)  # every HR file, as the LR is not thinned
            else:
                lr_path = lr_entry
                lr, lr_keys = read_source(lr_path, max_frames=10**9, crop=config.lr_crop, notice=notice)
            kinds = ["images" if k and isinstance(k[0], str) else "video" for k in (keys, lr_keys)]
            if kinds[0] != kinds[1]:  # frames match by file name between images, by time between videos
                raise InputError(f"{lr_path}: {'an image source' if kinds[1] == 'images' else 'a video'} cannot pair "
                                 f"with {'the images' if kinds[0] == 'images' else 'the video'} {path} (pair videos "
                                 "with videos, image folders with image folders)")
            idx = match_pairs(keys, lr_keys, offset=config.pair_offset)
            pairs = [(i, j) for i, j in enumerate(idx) if j is not None]
            if not pairs:
                raise InputError(f"{lr_path}: no frame matches one of {path} (by "
                                 f"{'file name' if isinstance(keys[0], str) else 'timestamp'})")
            hr_m, lr_m, keys_m = [], [], []
            for i, j in pairs:
                h, lf = hr[i], lr[j]
                if h.shape[-1] != lf.shape[-1] * scale or h.shape[-2] != lf.shape[-2] * scale:
                    turned = h.shape[-1] == lf.shape[-2] * scale and h.shape[-2] == lf.shape[-1] * scale
                    if turned:
                        raise InputError(
                            f"{lr_path}: LR frames are {lf.shape[-1]}x{lf.shape[-2]} but the HR frames of {path} are "
                            f"{h.shape[-1]}x{h.shape[-2]}, not x{scale} of them but turned a quarter (both are read "
                            "upright, as their display rotation or EXIF orientation says: one is stored sideways "
                            "without saying so)")
                    from .pairing import pair_rule
                    rule = pair_rule((lf.shape[-1], lf.shape[-2]), (h.shape[-1], h.shape[-2]), scale,
                                     lr_sar=_sample_aspect(lr_entry), hr_sar=_sample_aspect(entry))
                    raise InputError(f"{lr_path}: LR frames are {lf.shape[-1]}x{lf.shape[-2]} but the HR frames of "
                                     f"{path} are {h.shape[-1]}x{h.shape[-2]}, not x{scale} of them: {rule}")
                lw, lh = (h.shape[-1] // multiple) * multiple // scale, (h.shape[-2] // multiple) * multiple // scale
                hr_m.append(h[:, : lh * scale, : lw * scale])
                lr_m.append(lf[:, :lh, :lw].contiguous())
                keys_m.append(keys[i])
            src = Source(path, hr_m, keys_m, lr=lr_m)
            good = []
            for k in range(len(hr_m)):
                p = pair_psnr(hr_m[k], lr_m[k], scale)
                if p >= config.pair_threshold:
                    good.append(k)
                else:
                    src.rejected.append((k, p))
            if src.rejected:
                shown = ", ".join(f"frame {k} ({p:.1f} dB)" for k, p in src.rejected[:5])
                notice(f"{lr_path}: {len(src.rejected)} of {len(hr_m)} pairs do not match {path} (downscaled HR vs LR "
                       f"below {config.pair_threshold:g} dB: {shown}); they are not trained on")
            if not good:
                raise InputError(f"{lr_path}: none of its frames match {path} (every pair is below "
                                 f"{config.pair_threshold:g} dB PSNR; check the offset and crops)")
            train, held = split_held_out(len(good), config.held_out, config.min_held_out)
            src.train, src.held = [good[i] for i in train], [good[i] for i in held]
        else:
            src.train, src.held = split_held_out(len(src.hr), config.held_out, config.min_held_out)
        if not src.train:
            stills = bool(keys) and isinstance(keys[0], str)
            advice = ("; give more images: an image folder, or several image files (those given to --data one by "
                      "one are one source of stills together)") if stills else ""
            raise InputError(f"{path}: only {len(src.hr)} {'image' if stills else 'frame'}(s); at least "
                             f"{config.min_held_out + 1} are needed ({config.min_held_out} are held out for "
                             f"validation){advice}")
        sources.append(src)
    return sources


def frames_digest(sources: list[Source]) -> list[dict]:
    """What each source gave the run, for a rerun to tell that a file changed under its name (re-encoded, re-cut):
    per source its name, frame count, first frame's size and a SHA-256 over every 4th pixel of every 4th row of each
    frame kept (HR, and the matched LR of paired data) — a sixteenth of the bytes: a few ms for 1000 small frames."""
    import hashlib

    out = []
    for src in sources:
        h = hashlib.sha256()
        for frames in (src.hr, src.lr or []):
            for f in frames:
                h.update(repr(tuple(f.shape)).encode())
                h.update(f[:, ::4, ::4].contiguous().numpy().tobytes())
        out.append({"source": src.path, "frames": len(src.hr), "size": list(src.hr[0].shape[-1:-3:-1]),
                    "sha256": h.hexdigest()})
    return out


def apply_video_degradation(sources: list[Source], scale: int, cfg, seed: int) -> None:
    """The cached pass of the ``video`` degradation: LR frames for every HR frame, made in runs of consecutive
    training (and, separately, held-out) frames. Runs in a thread pool (PyAV releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    from .degradations import video_degrade

    jobs = []
    for si, src in enumerate(sources):
        src.lr = [None] * len(src.hr)  # type: ignore[list-item]
        for part in (src.train, src.held):
            for start in range(0, len(part), cfg.gop):
                run = part[start:start + cfg.gop]
                jobs.append((si, run, seed * 1_000_003 + si * 10_007 + run[0]))
    workers = max(1, min(4, (os.cpu_count() or 1)))

    def work(job):
        si, run, s = job
        src = sources[si]
        shapes = {tuple(src.hr[i].shape) for i in run}
        if len(shapes) > 1:  # frames of different sizes (an image folder): one run per frame, each LR its own size
            return si, run, [video_degrade(src.hr[i].unsqueeze(0), scale, cfg, s + k)[0] for k, i in enumerate(run)]
        return si, run, video_degrade(torch.stack([src.hr[i] for i in run]), scale, cfg, s)

    with ThreadPoolExecutor(workers) as pool:
        for si, run, lr in pool.map(work, jobs):
            for k, i in enumerate(run):
                sources[si].lr[i] = lr[k]


# --------------------------------------------------------------------------- sampling


class PatchSampler:
    """Seeded random HR patches (and the matching LR patches where the sources carry LR frames).

    ``sample(n)`` → (HR uint8 n×3×P×P, LR uint8 n×3×(P/s)×(P/s) or None, degradation seeds int64 n).
    A pure function of the generator state, which :meth:`state` / :meth:`load_state` save and restore.
    """

    def __init__(self, sources: list[Source], patch: int, scale: int, seed: int, *, rotate: bool) -> None:
        if patch % scale:
            raise ValueError(f"patch {patch} is not a multiple of the scale {scale}")
        self.sources = sources
        self.patch, self.scale, self.rotate = patch, scale, rotate
        self.items = [(si, fi) for si, s in enumerate(sources) for fi in s.train]
        self.paired = all(s.lr is not None for s in sources)
        self.g = torch.Generator().manual_seed(int(seed))

    def state(self) -> torch.Tensor:
        return self.g.get_state()

    def load_state(self, state: torch.Tensor) -> None:
        self.g.set_state(state)

    def _int(self, n: int) -> int:
        return int(torch.randint(n, (), generator=self.g))

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        p, s = self.patch, self.scale
        hrs, lrs, seeds = [], [], []
        for _ in range(n):
            si, fi = self.items[self._int(len(self.items))]
            src = self.sources[si]
            hr = src.hr[fi]
            h, w = hr.shape[-2:]
            y = self._int((h - p) // s + 1) * s
            x = self._int((w - p) // s + 1) * s
            flip = self._int(2) == 1
            rot = self._int(4) if self.rotate else 0
            seeds.append(int(torch.randint(2**62, (), generator=self.g)))
            hp = hr[:, y:y + p, x:x + p]
            lp = src.lr[fi][:, y // s:(y + p) // s, x // s:(x + p) // s] if self.paired else None
            hrs.append(augment(hp, flip, rot))
            if lp is not None:
                lrs.append(augment(lp, flip, rot))
        return torch.stack(hrs), (torch.stack(lrs) if self.paired else None), torch.tensor(seeds, dtype=torch.int64)


def augment(t: torch.Tensor, flip: bool, rot: int) -> torch.Tensor:
    if flip:
        t = t.flip(-1)
    if rot:
        t = torch.rot90(t, rot, dims=(-2, -1))
    return t


def validation_crops(sources: list[Source], size: int, count: int, scale: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fixed crops of the held-out frames (centred, ``size``×``size``, spread over sources and frames):
    (HR uint8 n×3×S×S, LR uint8 or None)."""
    held = [(si, fi) for si, s in enumerate(sources) for fi in s.held]
    if not held:
        raise InputError("no held-out frames for validation")
    picks = [held[round(i * (len(held) - 1) / max(1, count - 1))] for i in range(min(count, len(held)))]
    if len(picks) < count:
        picks = (picks * count)[:count]
    hrs, lrs = [], []
    paired = all(s.lr is not None for s in sources)
    for k, (si, fi) in enumerate(picks):
        hr = sources[si].hr[fi]
        h, w = hr.shape[-2:]
        side = min(size, h - h % scale, w - w % scale)
        side -= side % (2 * scale)
        # spread repeated picks of one frame across it
        y = ((h - side) * ((k * 7) % 5) // 4) // scale * scale
        x = ((w - side) * ((k * 3) % 5) // 4) // scale * scale
        hrs.append(hr[:, y:y + side, x:x + side])
        if paired:
            lr = sources[si].lr[fi]
            lrs.append(lr[:, y // scale:(y + side) // scale, x // scale:(x + side) // scale])
    side = min(t.shape[-1] for t in hrs)
    hrs = [t[:, :side, :side] for t in hrs]
    lrs = [t[:, : side // scale, : side // scale] for t in lrs]
    return torch.stack(hrs), (torch.stack(lrs) if paired else None)


__all__ = ["PatchSampler", "Source", "apply_video_degradation", "frames_digest", "load_sources", "match_pairs", "read_source",
           "split_held_out", "validation_crops"]
