"""What the local scheduler's fork server loads once, so that every batch worker forked from it starts with torch and
the worker's code already imported (``scheduler.worker_context``: ``set_forkserver_preload([__name__])``).

Imports only: nothing here runs a torch operation or touches CUDA, since a fork of a process that made torch's
OpenMP pool or initialised CUDA is not usable (``torch.cuda.is_initialized()`` stays False in the server; each
worker starts CUDA itself). An import that fails leaves the rest to each worker, which then fails the same way
and says why, as a spawned one did (``multiprocessing`` passes over an ``ImportError`` of a preload; another error
would end the server, and every worker's start with it).
"""

from __future__ import annotations

try:
    import torch  # noqa: F401 - the ~2.5 CPU-seconds each spawned worker paid
    from .. import pipeline, upscaler  # noqa: F401 - what a task's first upscale imports (PyAV, NumPy)
    from . import scheduler, worker  # noqa: F401
except Exception:  # noqa: BLE001 - see the module docstring
    pass
