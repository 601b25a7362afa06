"""The small interface every inference backend implements.

A backend takes a batch of RGB tiles on its own device (N x C x h x w, float in
[0, 1], in ``input_dtype``) and returns N x C x (h*scale) x (w*scale). It states
its device, dtype, and whether it needs a fixed tile shape. Lifecycle:
``with backend: backend(batch)``; ``open()`` loads/builds, ``close()`` frees.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch


class NonFiniteOutputError(RuntimeError):
    """The model produced NaN or Inf: writing it would give black or broken frames."""


@dataclass(frozen=True)
class BackendInfo:
    name: str
    """'torch', 'tensorrt' or 'torch-tensorrt'."""
    device: torch.device
    """Where input batches must live and where results are returned."""
    dtype: torch.dtype
    """Precision of inference (the dtype inputs are converted to)."""
    fixed_shape: tuple[int, int, int] | None
    """(batch, height, width) when the backend only runs one input shape, else None."""
    reason: str = ""
    """Why this backend was chosen (for --backend auto)."""


class Backend(abc.ABC):
    info: BackendInfo
    scale: int

    def open(self) -> "Backend":
        return self

    def close(self) -> None:
        pass

    def __enter__(self) -> "Backend":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def infer(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None" = None) -> torch.Tensor:
        """Upscale one batch of tiles. ``batch`` is on ``info.device``."""

    def __call__(self, batch: torch.Tensor, stream: "torch.cuda.Stream | None" = None) -> torch.Tensor:
        return self.infer(batch, stream)


def check_finite(out: torch.Tensor, where: str) -> None:
    """Raise NonFiniteOutputError when ``out`` holds NaN/Inf (one reduction, no host copy of the tensor)."""
    if not bool(torch.isfinite(out).all()):
        raise NonFiniteOutputError(
            f"{where}: the model produced non-finite values (NaN/Inf); this happens with some "
            "RRDB weights in fp16 on some GPUs. Rerun with --precision fp32 (or bf16)."
        )
