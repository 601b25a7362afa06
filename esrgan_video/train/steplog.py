"""The journal records of training steps, kept on the device until a line must be written.

A step's losses and gradient norm are 0-dim tensors on the training device. Turning each into a Python float
every step (``loss.item()``) makes the host wait for the GPU to finish that step before it may queue the next
one: one CUDA sync a step, and the GPU idles while the host samples and degrades the next batch. :class:`StepLog`
holds the records as they are and :meth:`StepLog.flush` copies every pending value to the host at once (one
sync per flush); the trainer flushes every ``log_every`` steps and before a validation, preview or checkpoint.
The numbers are the same: ``flush`` returns ``float(v.item())`` of each value, bit for bit.
"""

from __future__ import annotations

import torch


class StepLog:
    """Pending step records (dicts whose values are numbers or 0-dim tensors), in step order."""

    def __init__(self) -> None:
        self.pending: list[dict] = []
        self.host_reads = 0
        """How many times a flush copied tensors to the host (each one device sync)."""

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, rec: dict) -> None:
        """Keep ``rec`` (its tensors are not read: no sync)."""
        self.pending.append(rec)

    def flush(self) -> list[dict]:
        """The pending records with every tensor value a Python float (one copy to the host for all of them);
        the log is empty afterwards."""
        recs, self.pending = self.pending, []
        where = [(i, k) for i, rec in enumerate(recs) for k, v in rec.items() if isinstance(v, torch.Tensor)]
        if not where:
            return recs
        # float32 holds a float32, bfloat16 or float16 value exactly, so each number is what .item() gave
        values = torch.stack([recs[i][k].detach().reshape(()).float() for i, k in where]).cpu().tolist()
        self.host_reads += 1
        out = [dict(rec) for rec in recs]
        for (i, k), v in zip(where, values):
            out[i][k] = v
        return out


__all__ = ["StepLog"]
