"""The run folder: what a training run writes, and how a rerun finds where it left off.

    <out>/config.json                 the resolved configuration (what decides the run's results)
    <out>/journal.jsonl               one JSON object a line: every step, every validation
    <out>/checkpoints/model_NNNNNN.safetensors   the generator (EMA weights when EMA is on), for --model PATH
    <out>/checkpoints/state_NNNNNN.pt            optimisers, discriminator, EMA, step, RNG and data position
    <out>/discriminator.safetensors   the latest discriminator (gan stage), for a later run to resume
    <out>/final.safetensors           the generator when the run completes
    <out>/best.safetensors            the generator with the best validation score so far
    <out>/previews/step_NNNNNN.png    LR | base | current | HR on fixed held-out crops
    <out>/validation.png              the validation curves

Every file is written under a temporary name and renamed, so a killed run leaves only complete files; a
checkpoint counts once its state file exists (the model file is written first).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch

from ..errors import InputError, ModelError, OutputError
from ..files import atomic_write, check_can_create
from ._text import brief

CONFIG = "config.json"
JOURNAL = "journal.jsonl"
_STATE = re.compile(r"^state_(\d{6,})\.pt$")
_MODEL = re.compile(r"^model_(\d{6,})\.safetensors$")
VOLATILE = ("steps", "quiet", "save_every", "val_every", "preview_every", "log_every", "offline", "threads")
"""Config keys a rerun may change without making it a different run."""
PATH_KEYS = ("base", "data", "lr_data", "out", "vgg_weights", "discriminator_weights")
"""Config keys that name files or folders: one file named two ways (``clip.mp4``, ``/videos/clip.mp4``,
``./clip.mp4``) is the same setting."""
ADDED = ("data_frames",)
"""Config keys that run folders written by earlier versions lack: not compared with such a folder's run."""
KEEP_STATES = 2


@contextmanager
def writing(path: Path):
    """Name ``path`` on an OSError its write raises without a file name (a full disk fails in ``write``, which
    does not say which file), so the run's one line says which file could not be written."""
    try:
        yield
    except OSError as e:
        if e.filename is None:
            e.filename = str(path)
        raise


def _as_paths(key: str, value):
    """``value`` as compared between runs: a path key's file names made absolute, symbolic links resolved (a
    relative name from the current folder; two registry model names still differ as names)."""
    if key not in PATH_KEYS or value is None:
        return value

    def one(v):
        return os.path.realpath(v) if isinstance(v, str) else v

    return [one(v) for v in value] if isinstance(value, list) else one(value)


def _check_frames(folder: Path, old: list[dict], new: list[dict]) -> None:
    """InputError naming the first source whose frames differ from those the run in ``folder`` began with (the
    same file names: ``data`` is compared first)."""
    for was, now in zip(old, new):
        if {**was, "source": None} != {**now, "source": None}:  # one file may be named another way
            then, size = f"{was['size'][0]}x{was['size'][1]}", f"{now['size'][0]}x{now['size'][1]}"
            what = (f"{was['frames']} frames of {then} then, {now['frames']} of {size} now"
                    if (was["frames"], then) != (now["frames"], size) else f"{now['frames']} frames of {size}, "
                    "other pictures")
            raise InputError(f"{now['source']}: changed since the run in {folder} began ({what}); resuming would "
                             "train on other frames: use --restart to start over on it, or another --out")


class RunFolder:
    """Paths and atomic writes inside one run folder."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # paths
    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def journal_path(self) -> Path:
        return self.path / JOURNAL

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def model_path(self, step: int) -> Path:
        return self.checkpoints / f"model_{step:06d}.safetensors"

    def state_path(self, step: int) -> Path:
        return self.checkpoints / f"state_{step:06d}.pt"

    def preview_path(self, step: int) -> Path:
        return self.path / "previews" / f"step_{step:06d}.png"

    final_path = property(lambda self: self.path / "final.safetensors")
    best_path = property(lambda self: self.path / "best.safetensors")
    discriminator_path = property(lambda self: self.path / "discriminator.safetensors")
    curves_path = property(lambda self: self.path / "validation.png")

    # state of the folder
    def exists(self) -> bool:
        return self.config_path.is_file()

    def check_writable(self) -> None:
        """OutputError in the project's wording for an unwritable output place (``esrgan_video.files``) when the
        folder cannot be created or take files: a file in its place or above it ("F is not a directory"), a folder
        that takes no new file ("cannot create a file in D (reason)", found by creating one, as for any output);
        InputError for a non-empty folder that is not a run folder. Nothing is left behind."""
        if self.path.is_dir() and not self.exists() and any(self.path.iterdir()):
            raise InputError(f"{self.path}: is a non-empty folder without a {CONFIG}: not a run folder; "
                             "pick an empty or new --out")
        # the folder (or the nearest path above it that exists) must be a folder that takes new files
        near, first = self.path, self.path / CONFIG
        while not near.exists() and near != near.parent:
            near, first = near.parent, near  # ``first``: the first file or folder the run would create in ``near``
        if not near.is_dir():
            raise OutputError(f"{self.path}: is not a directory" if near == self.path
                              else f"{self.path}: {near} is not a directory")
        check_can_create(first)

    def read_config(self) -> dict:
        try:
            return json.loads(self.config_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise InputError(f"{self.config_path}: unreadable run configuration ({brief(e)}); use --restart") from e

    def check_same(self, resolved: dict) -> None:
        """InputError naming the first setting that differs from the run already in the folder."""
        old = self.read_config()
        for key in sorted(set(old) | set(resolved)):
            if key in VOLATILE or (key in ADDED and key not in old):
                continue
            if key == "data_frames":
                _check_frames(self.path, old[key], resolved.get(key) or [])
            elif _as_paths(key, old.get(key)) != _as_paths(key, resolved.get(key)):
                raise InputError(
                    f"{self.path}: holds a run with a different configuration ({key}: {old.get(key)!r} there, "
                    f"{resolved.get(key)!r} now); use --restart to start over or another --out")

    def check_world(self, size: int) -> None:
        """InputError naming the newest checkpoint when it was saved by a run of another number of processes.

        Each process trains on its slice of every global batch of ``processes × batch`` patches and keeps its own
        shuffling pool (the realesrgan recipe), so another number of processes would be another run: the global
        batch and the pools would not carry over."""
        last = self.latest_step() if self.exists() else None
        if last is None:
            return
        saved = self.read_config().get("world_size", 1)
        if saved != size:
            raise InputError(f"{self.state_path(last)}: saved by a run of {_processes(saved)}, this one has "
                             f"{_processes(size)}; resume it with {_launch(saved)}, or start over with --restart")

    def latest_step(self) -> int | None:
        """The newest checkpoint's step (its state file present), or None."""
        if not self.checkpoints.is_dir():
            return None
        steps = [int(m[1]) for p in self.checkpoints.iterdir() if (m := _STATE.match(p.name))]
        return max(steps) if steps else None

    def clear(self) -> None:
        """Remove what a run writes (for --restart); leaves other files alone."""
        for name in (CONFIG, JOURNAL, "final.safetensors", "best.safetensors", "discriminator.safetensors",
                     "validation.png"):
            (self.path / name).unlink(missing_ok=True)
        for sub in ("checkpoints", "previews"):
            shutil.rmtree(self.path / sub, ignore_errors=True)

    def remove_partials(self) -> list[Path]:
        """Delete the temporary files (``.NAME.*.part``) a killed run left beside the files it was writing."""
        gone = []
        for d in (self.path, self.checkpoints, self.path / "previews"):
            if d.is_dir():
                for p in d.glob(".*.part"):
                    p.unlink(missing_ok=True)
                    gone.append(p)
        return gone

    # writes
    def write_json(self, path: Path, obj) -> None:
        with writing(path):
            atomic_write(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def save_state(self, step: int, state: dict) -> Path:
        buf = io.BytesIO()
        torch.save(state, buf)
        path = self.state_path(step)
        with writing(path):
            return atomic_write(path, buf.getvalue())

    def load_state(self, step: int) -> dict:
        path = self.state_path(step)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # damaged zip / pickle: torch raises several kinds
            raise ModelError(f"{path}: corrupt training checkpoint ({brief(e)}); "
                             "delete it to resume from the one before, or use --restart") from e
        if not isinstance(state, dict) or state.get("step") != step:
            raise ModelError(f"{path}: corrupt training checkpoint (no step {step} inside); use --restart")
        return state

    def prune(self, keep: int = KEEP_STATES) -> None:
        """Keep the newest ``keep`` checkpoints (state + model), delete older ones, and every model file without
        its state file: a run stopped between the two writes left one, which is no checkpoint (a rerun resumes
        from the state before it) and, when the rerun's checkpoints fall on other steps (``--save-every`` may
        change), was never written over or deleted."""
        if not self.checkpoints.is_dir():
            return
        files = list(self.checkpoints.iterdir())
        kept = set(sorted(int(m[1]) for p in files if (m := _STATE.match(p.name)))[-keep:])
        for p in files:
            m = _STATE.match(p.name) or _MODEL.match(p.name)
            if m and int(m[1]) not in kept:
                p.unlink(missing_ok=True)

    def truncate_journal(self, step: int) -> None:
        """Drop journal lines past ``step`` (steps a killed run did after its last checkpoint)."""
        if not self.journal_path.is_file():
            return
        keep = []
        for line in self.journal_path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a kill
            if rec.get("step", 0) <= step:
                keep.append(line)
        with writing(self.journal_path):
            atomic_write(self.journal_path, ("\n".join(keep) + "\n" if keep else "").encode("utf-8"))


def _processes(n) -> str:
    return "1 process" if n == 1 else f"{n} processes"


def _launch(n) -> str:
    return "one process (no torchrun)" if n == 1 else f"{n} processes (torchrun, world size {n})"


__all__ = ["RunFolder", "VOLATILE"]
