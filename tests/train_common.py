"""The config the small training tests train with (their fixtures ``train_clip`` and ``train_base`` are in
conftest.py)."""

from __future__ import annotations

from esrgan_video.train import TrainConfig


def config(clip, base, out, **kw) -> TrainConfig:
    """``clip`` and ``base`` (paths) at 32-px patches, 2 a batch, no EMA, a constant learning rate of 5e-4."""
    values = dict(data=[str(clip)], base=str(base), out=str(out), patch=32, batch=2, quiet=True, ema=0,
                  lr=5e-4, schedule="constant")
    values.update(kw)
    return TrainConfig(**values)
