"""TensorRT backend pieces that need neither TensorRT nor a GPU: option checks, profiles, the missing-TensorRT message.

The engine build and run are in tests/test_gpu.py (marked tensorrt).
"""

from __future__ import annotations

import pytest
import torch

from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams
from esrgan_video.errors import BackendError
from esrgan_video.runtime.onnx_export import ExportSpec
from esrgan_video.runtime.tensorrt_backend import (
    BuildOptions,
    TensorRTBackend,
    build_engine,
    import_tensorrt,
    profile_shapes,
    tensorrt_available,
)
from esrgan_video.runtime.torch_tensorrt_backend import TorchTensorRTBackend, torch_tensorrt_available


def tiny() -> RRDBNet:
    torch.manual_seed(0)
    return RRDBNet(RRDBParams(nf=8, nb=1, gc=4)).eval()


def test_engines_need_a_cuda_device():
    with pytest.raises(BackendError, match="needs a CUDA device, got cpu"):
        TensorRTBackend(tiny(), "cpu", tile_shape=(16, 16))
    with pytest.raises(BackendError, match="needs a CUDA device"):
        TorchTensorRTBackend(tiny(), "cpu", tile_shape=(16, 16))


@pytest.mark.skipif(tensorrt_available(), reason="checks the message shown when TensorRT is missing")
def test_missing_tensorrt_says_how_to_install():
    with pytest.raises(BackendError, match=r"pip install 'esrgan-video\[tensorrt\]'"):
        import_tensorrt()
    with pytest.raises(BackendError, match="TensorRT is not installed"):
        build_engine(b"", shapes=((1, 8, 8),) * 3, in_channels=3, options=BuildOptions())


@pytest.mark.skipif(torch_tensorrt_available(), reason="checks the message shown when torch-tensorrt is missing")
def test_missing_torch_tensorrt_says_how_to_install():
    from esrgan_video.runtime.torch_tensorrt_backend import import_torch_tensorrt

    with pytest.raises(BackendError, match="torch-tensorrt is not installed"):
        import_torch_tensorrt()


def test_profiles():
    spec = ExportSpec((64, 96), batch=2)
    assert profile_shapes(spec, BuildOptions()) == ((2, 64, 96),) * 3
    assert profile_shapes(spec, BuildOptions(min_shape=(1, 32, 32), max_shape=(4, 128, 128))) == (
        (1, 32, 32), (2, 64, 96), (4, 128, 128))
    with pytest.raises(BackendError, match="both min_shape and max_shape"):
        BuildOptions(min_shape=(1, 32, 32))
    with pytest.raises(BackendError, match="workspace"):
        BuildOptions(workspace_mib=-1)
