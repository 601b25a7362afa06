"""Inference backends (ONNX Runtime on the CPU, torch CPU/CUDA, TensorRT, torch-tensorrt), ONNX export and the
engine cache.

The names below are imported lazily, so that ``runtime.devices`` (the device parser every option goes through)
does not load torch: ``esrgan-video -h`` and a refusal of bad input answer without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esrgan_video._lazy import lazy_names

__getattr__, __dir__ = lazy_names(__name__, {
    **{name: "esrgan_video.runtime.base"
       for name in ("Backend", "BackendInfo", "CommonOptions", "FiniteGuard", "NonFiniteOutputError", "check_finite")},
    **{name: "esrgan_video.runtime.select" for name in ("choose_backend", "make_backend")},
}, globals())

if TYPE_CHECKING:
    from esrgan_video.runtime.base import (Backend, BackendInfo, CommonOptions, FiniteGuard, NonFiniteOutputError,
                                           check_finite)
    from esrgan_video.runtime.select import choose_backend, make_backend


__all__ = ["Backend", "BackendInfo", "CommonOptions", "FiniteGuard", "NonFiniteOutputError", "check_finite",
           "choose_backend", "make_backend"]
