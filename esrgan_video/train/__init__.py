"""Fine-tuning ESRGAN on your own footage: the ESRGAN paper's training half.

    from esrgan_video.train import TrainConfig, train
    result = train(TrainConfig(data=["episode.mkv"], base="RealESRGAN_x4plus_anime_6B", out="runs/ep",
                               stage="psnr", steps=200))

Not imported by ``import esrgan_video`` or the inference path; importing this package loads only the config
(the trainer, VGG and data code load when used).

Modules: :mod:`.config` (``TrainConfig``), :mod:`.recipes`, :mod:`.degradations` (+ :mod:`.jpeg`),
:mod:`.data`, :mod:`.vgg`, :mod:`.losses`, :mod:`.discriminators`, :mod:`.trainer` (+ :mod:`.steplog`),
:mod:`.run_folder`, :mod:`.images`, :mod:`.ddp`, :mod:`.blend`.
"""

from __future__ import annotations

from .._lazy import lazy_names
from .config import TrainConfig


def train(config=None, **kwargs):
    """See :func:`esrgan_video.train.trainer.train`."""
    from .trainer import train as _train

    return _train(config, **kwargs)


__getattr__, __dir__ = lazy_names(__name__, dict.fromkeys(("Trainer", "TrainResult"), "esrgan_video.train.trainer"),
                                  globals())


__all__ = ["TrainConfig", "Trainer", "TrainResult", "train"]
