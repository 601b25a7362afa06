"""Training on CUDA: bf16 and fp16 autocast with fp32 master weights and channels_last, and the result loads for
inference. Skips with a reason without a CUDA GPU (benchmarks/gpu_check.sh runs it)."""

from __future__ import annotations

import pytest
import torch

from esrgan_video.models.checkpoints import save_safetensors
from esrgan_video.testing import near_identity_model

CUDA = torch.cuda.is_available()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU (torch.cuda.is_available() is False)")]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_cuda_autocast_training_keeps_fp32_weights_and_learns(tmp_path, precision):
    from esrgan_video.samples import sample_clip
    from esrgan_video.train import TrainConfig, Trainer

    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    base = tmp_path / "tiny.safetensors"
    save_safetensors(near_identity_model(4, nf=32, nb=2, gc=16).state_dict(), base)
    cfg = TrainConfig(data=[str(sample_clip("bikes.mp4", progress=False))], base=str(base), out=str(tmp_path / "run"),
                      patch=64, batch=8, steps=30, ema=0, lr=5e-4, schedule="constant", device="cuda",
                      precision=precision, max_frames=24, quiet=True, offline=True)
    trainer = Trainer(cfg)
    result = trainer.run()
    assert trainer.device.type == "cuda" and trainer.amp_dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    assert all(p.dtype == torch.float32 for p in trainer.g.parameters())
    assert trainer.g.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    assert result.validation[-1]["psnr"] > result.validation[0]["psnr"]
    from esrgan_video.models import load_model

    assert load_model(result.final, device="cuda").scale == 4


def test_cuda_gan_stage_step(tmp_path):
    from esrgan_video.samples import sample_clip
    from esrgan_video.train import TrainConfig, train

    base = tmp_path / "tiny.safetensors"
    save_safetensors(near_identity_model(4, nf=32, nb=1, gc=16).state_dict(), base)
    r = train(TrainConfig(data=[str(sample_clip("bikes.mp4", progress=False))], base=str(base),
                          out=str(tmp_path / "gan"), stage="gan", recipe="realesrgan", patch=64, batch=4, steps=3,
                          device="cuda", max_frames=12, quiet=True, offline=True,
                          perceptual_weight=0.0))  # the GPU machine may have no VGG weights cached
    assert r.step == 3 and r.final.is_file()
