"""Batch restoration: many files, resumable, many GPUs or a Ray cluster (see docs/batch.md).

    from esrgan_video.batch import run_batch
    summary = run_batch(["films/"], "restored/", model="RealESRGAN_x4plus", devices="0,1")
    print(summary.table()); raise SystemExit(summary.exit_code)
"""

from .driver import BATCH_FAILED_EXIT, BatchInterrupted, BatchSummary, JobRow, options_hash, parse_devices, run_batch
from .inputs import VIDEO_EXTENSIONS, Job, Source, discover, plan_jobs
from .journal import Journal
from ..video.segment_join import join_segments
from ..video.keyframes import KeyframeIndex, scan_keyframes
from .segments import Segment, plan_segments

__all__ = [
    "BATCH_FAILED_EXIT",
    "BatchInterrupted",
    "BatchSummary",
    "Job",
    "JobRow",
    "Journal",
    "KeyframeIndex",
    "Segment",
    "Source",
    "VIDEO_EXTENSIONS",
    "discover",
    "join_segments",
    "options_hash",
    "parse_devices",
    "plan_jobs",
    "plan_segments",
    "run_batch",
    "scan_keyframes",
]
