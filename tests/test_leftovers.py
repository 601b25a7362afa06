"""Nothing the product or its benchmarks write is left where it does not belong.

Each run is a real process with ``TMPDIR``, ``ESRGAN_VIDEO_CACHE`` and ``HOME`` pointing at fresh folders, so what
it leaves there (and beside its output) is seen exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esrgan_video.testing import save_near_identity
from tests.media import make_clip

ROOT = Path(__file__).resolve().parents[1]


def _places(tmp_path: Path) -> tuple[dict, dict[str, Path]]:
    places = {name: tmp_path / name for name in ("tmp", "cache", "home", "out")}
    for p in places.values():
        p.mkdir()
    env = {**os.environ, "TMPDIR": str(places["tmp"]), "ESRGAN_VIDEO_CACHE": str(places["cache"]),
           "HOME": str(places["home"]), "XDG_CACHE_HOME": str(places["home"] / ".cache"), "OMP_NUM_THREADS": "1"}
    env.pop("ORT_DISABLE_TELEMETRY", None)  # as a user's shell has it
    return env, places


def _left(folder: Path) -> list[str]:
    """Everything under ``folder``, hidden files included; torch's own compile cache folder (``torchinductor_USER``,
    shared by every process of that user and reused) is not ours."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if not p.relative_to(folder).parts[0].startswith("torchinductor_"))


def test_a_cli_run_leaves_only_its_output(tmp_path):
    """A finished ``esrgan-video`` run leaves its output and nothing else: not in the output folder, the model
    cache, ``$TMPDIR`` (ONNX Runtime, imported by the backend choice, wrote its telemetry session file ``.ses``
    there) or the home folder (ONNX Runtime's device id and event database under ``~/.cache/Microsoft``)."""
    pytest.importorskip("onnxruntime")  # what wrote them; the check is the same without it
    env, places = _places(tmp_path)
    src = make_clip(tmp_path / "in.mp4", size=(32, 24), frames=3)
    model = save_near_identity(tmp_path / "tiny.safetensors", 2, nf=8, nb=1)
    proc = subprocess.run([sys.executable, "-m", "esrgan_video.cli", str(src), str(places["out"] / "o.mp4"),
                           "--model", str(model), "--device", "cpu", "-q"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _left(places["out"]) == ["o.mp4"]
    assert (_left(places["tmp"]), _left(places["cache"]), _left(places["home"])) == ([], [], [])


def test_onnxruntime_is_imported_with_its_telemetry_off_and_the_environment_kept(tmp_path):
    """The import sets ``ORT_DISABLE_TELEMETRY=1`` for itself only (the process environment is as before); a value
    the user set is theirs."""
    pytest.importorskip("onnxruntime")
    env, places = _places(tmp_path)
    code = ("import os\nfrom esrgan_video.runtime.onnxruntime_backend import onnxruntime_available\n"
            "assert onnxruntime_available()\nprint(os.environ.get('ORT_DISABLE_TELEMETRY'))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "None"), proc.stderr[-2000:]
    assert (_left(places["tmp"]), _left(places["home"])) == ([], [])


def test_the_training_benchmark_removes_its_temporary_folder(tmp_path):
    """``benchmarks/train_bench.py gpu --dry-run`` (a step of gpu_check's dry run) made ``train-gpu-*`` in
    ``$TMPDIR`` and never removed it (2.6 MB a run; on a GPU the 67 MB x4plus init each time)."""
    env, places = _places(tmp_path)
    proc = subprocess.run([sys.executable, "benchmarks/train_bench.py", "gpu", "--dry-run", "--budget", "10",
                           "--out", str(places["out"])], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _left(places["out"]) == ["train.json"]
    assert _left(places["tmp"]) == []


def _dead_pid() -> int:
    """The pid of a process that has exited (as one killed with SIGKILL has)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    return int(proc.stdout)


def test_a_write_removes_the_temporaries_of_writers_killed_outright(tmp_path):
    """A process killed during :func:`atomic_write` (SIGKILL: no ``finally``) leaves ``.NAME.<pid>.<random>.part``
    (an engine, a checkpoint: up to hundreds of MB); the next write of that target removes it. A live writer's, and
    another target's, are left alone."""
    from esrgan_video.files import atomic_write, part_prefix

    target = tmp_path / "x.engine"
    dead = tmp_path / f".x.engine.{_dead_pid()}.k1ll3d.part"
    live = tmp_path / f"{part_prefix(target)}busy.part"  # this process: alive
    other = tmp_path / f".y.engine.{_dead_pid()}.k1ll3d.part"
    for p in (dead, live, other):
        p.write_bytes(b"half")
    atomic_write(target, b"whole")
    assert target.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, other.name])


def test_a_write_leaves_the_temporaries_of_another_machine_in_a_shared_folder(tmp_path):
    """In a folder shared between machines (NFS) a writer's pid says nothing on another machine: the temporary of a
    writer still running there (whose pid is dead here) was removed. The names carry the machine
    (``.NAME.<host>.<pid>.<random>.part``, ``.out.<host>.<pid>.partial.mkv``): only this machine's dead writers' (and
    those of names without a host, as before) are removed, by atomic_write and by a video writer's partials."""
    from esrgan_video.files import atomic_write, host_label, part_prefix
    from esrgan_video.video.partials import join_partial_path, partial_path, remove_stale_partials

    here, there, gone = host_label(), "other-machine-" + host_label(), _dead_pid()
    target = tmp_path / "x.engine"
    assert part_prefix(target) == f".x.engine.{here}.{os.getpid()}."
    dead_here = tmp_path / f".x.engine.{here}.{gone}.k1ll3d.part"
    dead_old = tmp_path / f".x.engine.{gone}.k1ll3d.part"  # the name before it carried the host
    elsewhere = tmp_path / f".x.engine.{there}.{gone}.running.part"  # alive on its own machine
    for p in (dead_here, dead_old, elsewhere):
        p.write_bytes(b"half")
    atomic_write(target, b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, elsewhere.name])

    dst = tmp_path / "out.mkv"
    assert partial_path(dst, gone).name == f".out.{here}.{gone}.partial.mkv"
    assert join_partial_path(dst, gone).name == f".out.{here}.join-{gone}.partial.mkv"
    stale = [partial_path(dst, gone), join_partial_path(dst, gone), tmp_path / f".out.{gone}.partial.mkv",
             tmp_path / f".out.join-{gone}.partial.mkv"]
    kept = [tmp_path / f".out.{there}.{gone}.partial.mkv", tmp_path / f".out.{there}.join-{gone}.partial.mkv"]
    for p in stale + kept:
        p.write_bytes(b"half")
    assert sorted(remove_stale_partials(dst)) == sorted(stale)
    assert all(p.exists() for p in kept)


def test_a_download_removes_the_part_file_of_a_download_killed_outright(tmp_path):
    """The model downloader's ``.NAME.<pid>.<random>.part`` (a whole model's bytes) left by a process killed with
    SIGKILL is removed by the next download of that file, over real HTTP from 127.0.0.1."""
    from esrgan_video.models.download import download

    from tests.media import serving

    served = tmp_path / "served"
    served.mkdir()
    (served / "w.pth").write_bytes(b"weights" * 1000)
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / f".w.pth.{_dead_pid()}.k1ll3d.part").write_bytes(b"weights" * 10)
    with serving(served) as url:
        download(f"{url}/w.pth", cache / "w.pth", progress=False, retries=0)
    assert [p.name for p in cache.iterdir()] == ["w.pth"]
    assert (cache / "w.pth").read_bytes() == b"weights" * 1000


_EXPORT_ON_A_FULL_DISK = """
import resource, signal, sys
from esrgan_video.runtime.onnx_export import ExportSpec, export_onnx
from esrgan_video.testing import near_identity_model
model = near_identity_model(2, nf=8, nb=1)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, as one on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, resource.RLIM_INFINITY))
try:
    export_onnx(model, ExportSpec((16, 16), precision="fp32"), sys.argv[1], device="cpu", check=False)
except OSError as e:
    print(e.errno)
"""


def test_an_onnx_export_that_cannot_be_written_leaves_nothing(tmp_path):
    """``export_onnx(..., path)`` whose write fails (the file size limit, as a full disk: EFBIG) raises and leaves
    neither the file nor a temporary beside it (it left ``NAME.tmp``)."""
    import errno

    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", _EXPORT_ON_A_FULL_DISK, str(out / "m.onnx")], cwd=ROOT,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, str(errno.EFBIG)), proc.stderr[-2000:]
    assert _left(out) == []


def test_a_still_image_run_removes_the_partial_of_a_run_killed_outright(tmp_path, capfd):
    """A still run killed with SIGKILL while writing leaves ``.NAME.<pid>.partial.png`` beside its target (the
    video writer's naming); the next run of that target removes it, as the video writer does."""
    import numpy as np
    from PIL import Image

    from esrgan_video.testing import run_cli

    src = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(src)
    model = save_near_identity(tmp_path / "tiny.safetensors", 2, nf=8, nb=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / f".p.{_dead_pid()}.partial.png").write_bytes(b"\x89PNG half")
    proc = run_cli(capfd, src, out / "p.png", "--model", model, "--device", "cpu", "-q")
    assert proc.returncode == 0, proc.stderr
    assert _left(out) == ["p.png"]


def test_the_training_benchmark_stopped_by_its_step_timeout_removes_its_temporary_folder(tmp_path):
    """gpu_check runs each step under ``timeout`` (SIGTERM, then SIGKILL 10 s later): the benchmark stopped
    mid-run by SIGTERM exits 143 and its ``train-gpu-*`` folder goes with it (Python's default SIGTERM left it)."""
    import signal
    import time

    env, places = _places(tmp_path)
    proc = subprocess.Popen([sys.executable, "benchmarks/train_bench.py", "gpu", "--dry-run", "--budget", "10",
                             "--out", str(places["out"])], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(places["tmp"].glob("train-gpu-*/run/journal.jsonl")):
        time.sleep(0.02)  # the training has started
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert _left(places["tmp"]) == []
