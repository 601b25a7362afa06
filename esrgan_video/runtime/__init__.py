"""Inference backends (ONNX Runtime on the CPU, torch CPU/CUDA, TensorRT, torch-tensorrt), ONNX export and the
engine cache."""

from esrgan_video.runtime.base import (Backend, BackendInfo, CommonOptions, FiniteGuard, NonFiniteOutputError,
                                       check_finite)
from esrgan_video.runtime.select import choose_backend, make_backend

__all__ = ["Backend", "BackendInfo", "CommonOptions", "FiniteGuard", "NonFiniteOutputError", "check_finite",
           "choose_backend", "make_backend"]
