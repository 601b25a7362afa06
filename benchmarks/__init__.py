"""Benchmarks for esrgan-video: throughput, memory, time to first frame, fidelity, and the peers.

``python -m benchmarks.run --quick`` (``make bench``) or ``--full`` (``make bench-full``) writes
``benchmarks/results/`` (JSON, Markdown, PNG). The GPU half runs from ``benchmarks/gpu_check.sh``;
the shared maths (FLOPs, device peaks, PSNR, interleaved timing, machine facts) is in
:mod:`benchmarks.common` so both halves count and report the same way.
"""
