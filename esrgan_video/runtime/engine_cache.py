"""TensorRT engine cache: keys, file layout, validation, and the build-or-load step.

Where: ``engines/cache/`` inside a source checkout (the package's parent directory holds
``engines/`` and ``.git`` or ``setup.py``; git-ignored), else ``<user cache>/engines``
(``$ESRGAN_VIDEO_CACHE``, ``$XDG_CACHE_HOME/esrgan-video`` or ``~/.cache/esrgan-video``).
``$ESRGAN_VIDEO_ENGINES`` overrides both.

Layout per engine: ``<model>-<digest16>.engine`` and a JSON sidecar ``<same>.engine.json``
holding the full key, the engine's size and sha256, the build time and date. Timing caches
(one per TensorRT version, CUDA major, GPU and compute capability: :data:`TIMING_FIELDS`) sit beside
them as ``timing-trt<version>-cu<major>-<gpu>-sm<cc>.timing``.

Concurrency: batch mode runs one process per GPU against one cache directory. Builds of one
engine are serialised by a per-engine ``flock`` (the second process waits, then loads what the
first wrote); each timing cache has its own lock, held only while it is read and while it is
written back (merged with what other builds saved meanwhile). Every file is written under a
name unique to the writing process and thread, then renamed into place, so no reader ever sees
a half-written file and no two writers share a temporary file.

Trust: an engine is used only when its sidecar exists, parses, carries exactly the expected
key, and the engine file has the recorded size and sha256; and then only if TensorRT
deserialises it. Anything else (stale key, truncated or corrupt file, failed
deserialisation) is deleted and rebuilt, never trusted.

Everything here except :func:`get_or_build`'s callbacks is TensorRT-free and runs on the CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch

from esrgan_video.errors import BackendError, OutputError
from esrgan_video.files import atomic_write, locked

ENGINE_FORMAT = 2
"""Bumped when the way engines are exported/built changes in a way the other key fields miss
(2: ``dynamic``/``profiles`` joined the key and weights are hashed from the module exported)."""
ENGINES_ENV = "ESRGAN_VIDEO_ENGINES"
SIDECAR_SUFFIX = ".json"

T = TypeVar("T")


@dataclass(frozen=True)
class EngineKey:
    """Everything that shapes a TensorRT engine. Equal keys ⇔ interchangeable engines."""

    weights_sha256: str
    """sha256 of the weights the export reads: the module's current state dict (:func:`weights_sha256`)."""
    scale: int
    min_shape: tuple[int, int, int]
    """(batch, height, width) of the smallest input the engine accepts."""
    opt_shape: tuple[int, int, int]
    """The shape the builder tunes for."""
    max_shape: tuple[int, int, int]
    precision: str
    """'fp16' or 'fp32' (strongly typed: the precision of the exported graph)."""
    fp32_layers: tuple[str, ...]
    opset: int
    exporter: str
    """ONNX exporter and torch major.minor, e.g. 'torchscript/torch-2.14'."""
    trt_version: str
    cuda_major: str
    """The CUDA major version TensorRT was built for, '12' or '13' (:func:`tensorrt_cuda_major`): the
    ``tensorrt-cu12`` and ``tensorrt-cu13`` wheels of one TensorRT release carry the same ``__version__``."""
    gpu_name: str
    compute_capability: str
    """'9.0' for an H100."""
    opt_level: int
    """builder_optimization_level (0-5)."""
    workspace_mib: int
    """Workspace pool limit in MiB (0: TensorRT's default, the device memory)."""
    dynamic: bool = False
    """The ONNX graph has dynamic batch/height/width axes (``min_shape != max_shape``)."""
    profiles: int = 0
    """Optimisation profiles in the engine: one per execution context that runs at once (0: static engine)."""
    format: int = ENGINE_FORMAT

    @property
    def static(self) -> bool:
        return self.min_shape == self.opt_shape == self.max_shape

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for f in ("min_shape", "opt_shape", "max_shape", "fp32_layers"):
            d[f] = list(d[f])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EngineKey":
        names = {f.name for f in dataclasses.fields(cls)}
        if set(d) != names:
            raise ValueError(f"key fields differ: missing {sorted(names - set(d))}, unknown {sorted(set(d) - names)}")
        d = dict(d)
        for f in ("min_shape", "opt_shape", "max_shape"):
            d[f] = tuple(int(v) for v in d[f])
        d["fp32_layers"] = tuple(d["fp32_layers"])
        return cls(**d)

    def digest(self) -> str:
        """sha256 of the canonical JSON of every field."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()

    def differences(self, other: "EngineKey") -> list[str]:
        """'field: expected X, got Y' for every field that differs (self is the expected key)."""
        a, b = self.to_dict(), other.to_dict()
        return [f"{k}: expected {a[k]!r}, got {b[k]!r}" for k in a if a[k] != b[k]]


# ------------------------------------------------------------------------------ facts


def weights_sha256(model: torch.nn.Module) -> str:
    """The canonical hash of the weights the export will read: ``model``'s current state dict.

    Never ``ModelInfo.sha256``, which is computed once at load: weights edited in place afterwards,
    or a model loaded in fp16 (its weights rounded), would otherwise reuse an engine built from other
    weights. Same hash as the ONNX Runtime backend's export key (0.08 s for x4plus)."""
    from esrgan_video.models.loading import state_dict_sha256

    return state_dict_sha256(model.state_dict())


def model_label(model: torch.nn.Module) -> str:
    info = getattr(model, "info", None)
    return getattr(info, "name", None) or f"rrdb-x{getattr(model, 'scale', '?')}"


def exporter_tag(exporter: str = "torchscript") -> str:
    major_minor = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    return f"{exporter}/torch-{major_minor}"


def gpu_facts(device: torch.device) -> tuple[str, str]:
    """(GPU name, compute capability 'M.m') of a CUDA device."""
    major, minor = torch.cuda.get_device_capability(device)
    return torch.cuda.get_device_name(device), f"{major}.{minor}"


def cuda_major(dist_names: Iterable[str], torch_cuda: str | None) -> str:
    """The CUDA major TensorRT was built for, from the names of the distributions that install it (pure).

    ``tensorrt_cu13_libs`` (or ``tensorrt-cu13``, any case) says 13. A TensorRT without one (the wheel of a TensorRT
    tar or container install is plain ``tensorrt``) is taken to be built for the CUDA torch runs (``torch_cuda``,
    e.g. '12.8'), which it then shares the process with; 'unknown' when neither says."""
    for name in dist_names:
        m = re.fullmatch(r"tensorrt[-_.]cu(\d+)(?:[-_.].*)?", name.strip().lower())
        if m:
            return str(int(m.group(1)))
    if torch_cuda:
        m = re.match(r"(\d+)\.", f"{torch_cuda}.")
        if m:
            return str(int(m.group(1)))
    return "unknown"


def tensorrt_distributions() -> list[str]:
    """Names of the installed distributions whose name starts with ``tensorrt``, sorted (NVIDIA's standalone wheels
    name their CUDA major: ``tensorrt_cu12``, ``tensorrt_cu13_bindings``, ``tensorrt_cu13_libs``). Reads each
    distribution's name only (0.1 s for 75 of them; ``packages_distributions`` reads every file list: 2 s)."""
    names = set()
    try:
        for dist in importlib.metadata.distributions():
            name = (dist.metadata["Name"] or "") if dist.metadata is not None else ""
            if name.lower().startswith("tensorrt"):
                names.add(name)
    except Exception:  # noqa: BLE001 - a broken metadata entry must not stop a build; torch's CUDA then decides
        pass
    return sorted(names)


@functools.lru_cache(maxsize=1)
def tensorrt_cuda_major() -> str:
    """:func:`cuda_major` of this environment (:func:`tensorrt_distributions` and ``torch.version.cuda``), once
    per process."""
    return cuda_major(tensorrt_distributions(), torch.version.cuda)


# ------------------------------------------------------------------------------ places


def checkout_root() -> Path | None:
    """The source checkout this package runs from, if any (has engines/ and .git or setup.py)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "engines").is_dir() and ((root / ".git").exists() or (root / "setup.py").exists()):
        return root
    return None


def engines_dir() -> Path:
    """Where engines are cached (see the module docstring)."""
    env = os.environ.get(ENGINES_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    if root is not None:
        return root / "engines" / "cache"
    from esrgan_video.models.registry import cache_dir

    return cache_dir() / "engines"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "model"


@dataclass(frozen=True)
class EnginePaths:
    engine: Path
    sidecar: Path
    lock: Path


def engine_paths(key: EngineKey, label: str, root: Path) -> EnginePaths:
    """File names for ``key`` under ``root`` (pure)."""
    stem = f"{_slug(label)}-{key.digest()[:16]}.engine"
    return EnginePaths(engine=root / stem, sidecar=root / (stem + SIDECAR_SUFFIX), lock=root / (stem + ".lock"))


TIMING_FIELDS = ("trt_version", "cuda_major", "gpu_name", "compute_capability")
"""The fields of an :class:`EngineKey` a timing cache is specific to: tactic timings hold for one TensorRT build (its
version and the CUDA major it was built for) on one GPU; engines that differ in anything else share the file."""


def timing_cache_key(key: EngineKey) -> tuple[str, ...]:
    """The :data:`TIMING_FIELDS` of ``key``: equal for exactly the engines that share a timing cache (pure)."""
    return tuple(str(getattr(key, f)) for f in TIMING_FIELDS)


def timing_cache_path(key: EngineKey, root: Path) -> Path:
    """The timing cache of ``key``'s :func:`timing_cache_key` under ``root`` (pure): a cache written by one TensorRT,
    CUDA major or GPU is never opened by another (TensorRT's own header check is the second guard)."""
    trt, cuda, gpu, cc = (_slug(v) for v in timing_cache_key(key))
    return root / f"timing-trt{trt}-cu{cuda}-{gpu}-sm{cc}.timing"


# ------------------------------------------------------------------------------ entries


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_entry(paths: EnginePaths, key: EngineKey, data: bytes, *, label: str, build_seconds: float) -> None:
    """Write the engine, then its sidecar (both atomically: a crash leaves no trusted half-entry)."""
    paths.engine.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(paths.engine, data)
    sidecar = {
        "format": ENGINE_FORMAT,
        "model": label,
        "digest": key.digest(),
        "key": key.to_dict(),
        "engine_file": paths.engine.name,
        "engine_size": len(data),
        "engine_sha256": _sha256_bytes(data),
        "build_seconds": round(build_seconds, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write(paths.sidecar, (json.dumps(sidecar, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_sidecar(path: Path) -> dict:
    """Parse a sidecar; ValueError naming the problem when it is not one."""
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"unreadable sidecar ({e})") from e
    for field in ("key", "engine_size", "engine_sha256", "model"):
        if not isinstance(d, dict) or field not in d:
            raise ValueError(f"sidecar lacks {field!r}")
    return d


def validate_entry(paths: EnginePaths, key: EngineKey) -> tuple[bytes | None, str]:
    """(engine bytes, '') when the entry can be handed to TensorRT, else (None, why not)."""
    if not paths.sidecar.exists() and not paths.engine.exists():
        return None, "not built yet"
    if not paths.sidecar.exists():
        return None, f"{paths.engine.name} has no sidecar"
    try:
        side = read_sidecar(paths.sidecar)
        stored = EngineKey.from_dict(side["key"])
    except (ValueError, TypeError) as e:
        return None, f"{paths.sidecar.name}: {e}"
    diffs = key.differences(stored)
    if diffs:
        return None, f"{paths.sidecar.name} key mismatch: " + "; ".join(diffs)
    if not paths.engine.exists():
        return None, f"{paths.engine.name} is missing"
    data = paths.engine.read_bytes()
    if len(data) != side["engine_size"]:
        return None, f"{paths.engine.name} is truncated or overwritten: {len(data)} bytes, sidecar says {side['engine_size']}"
    if _sha256_bytes(data) != side["engine_sha256"]:
        return None, f"{paths.engine.name} is corrupt: its sha256 differs from the sidecar's"
    return data, ""


def remove_entry(paths: EnginePaths) -> None:
    for p in (paths.engine, paths.sidecar):
        p.unlink(missing_ok=True)


@dataclass
class CacheOutcome:
    hit: bool
    """True when a cached engine was loaded, False when it was (re)built."""
    note: str
    """Why it was rebuilt ('' on a hit)."""
    paths: EnginePaths


def get_or_build(
    key: EngineKey,
    *,
    label: str,
    root: Path,
    build: Callable[[], bytes],
    load: Callable[[bytes], T],
    log: Callable[[str], None] = lambda msg: None,
) -> tuple[T, CacheOutcome]:
    """Load the cached engine for ``key`` or build, store and load a new one.

    ``load`` must raise (any exception) when the bytes cannot be used — e.g. TensorRT's
    ``deserialize_cuda_engine`` returning None; the entry is then deleted and rebuilt.
    """
    paths = engine_paths(key, label, root)
    with locked(paths.lock):
        data, why = validate_entry(paths, key)
        if data is not None:
            try:
                return load(data), CacheOutcome(hit=True, note="", paths=paths)
            except Exception as e:  # noqa: BLE001 - any failure to deserialise means: do not trust it
                why = f"{paths.engine.name} failed to load ({type(e).__name__}: {e})"
        if why != "not built yet":
            log(f"engine cache: {why}; rebuilding")
        remove_entry(paths)
        t0 = time.perf_counter()
        data = build()
        seconds = time.perf_counter() - t0
        write_entry(paths, key, data, label=label, build_seconds=seconds)
        try:
            obj = load(data)
        except Exception as e:
            remove_entry(paths)
            raise BackendError(f"{paths.engine.name}: a freshly built engine failed to load ({e})") from e
        return obj, CacheOutcome(hit=False, note=why, paths=paths)


# ------------------------------------------------------------------------------ timing caches


def _timing_lock(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def load_timing_cache(config, path: Path | None, log: Callable[[str], None] = lambda msg: None):
    """Attach a timing cache to a TensorRT ``IBuilderConfig`` and return it, never failing a build over it.

    The file is read under its lock. ``create_timing_cache`` returns None for bytes it cannot parse
    (a truncated or foreign file), or may raise: then, as Polygraphy's ``CreateConfig`` does, a fresh empty cache
    is used instead, and the same when ``set_timing_cache`` rejects a cache made by another TensorRT or GPU.
    """
    data = b""
    if path is not None and path.exists():
        with locked(_timing_lock(path)):
            data = path.read_bytes()
    try:
        cache = config.create_timing_cache(data)
    except Exception as e:  # noqa: BLE001 - whatever the binding raises for bad bytes, the build goes on
        log(f"TensorRT: timing cache {path}: {type(e).__name__}: {e}")
        cache = None
    if cache is None:
        log(f"TensorRT: timing cache {path} is unreadable (corrupt or truncated); starting a new one")
        cache = config.create_timing_cache(b"")
    elif config.set_timing_cache(cache, ignore_mismatch=False):
        return cache
    else:
        log(f"TensorRT: timing cache {path} does not match this GPU/TensorRT; starting a new one")
        cache = config.create_timing_cache(b"")
    if cache is None or not config.set_timing_cache(cache, ignore_mismatch=False):
        raise BackendError("TensorRT could not create an empty timing cache")
    return cache


def save_timing_cache(config, cache, path: Path, log: Callable[[str], None] = lambda msg: None) -> None:
    """Write ``cache`` (the config's, with this build's timings) back to ``path``, merged with the file's.

    Under the file's lock: timings another process saved since this build read the file are combined
    in (``ITimingCache.combine``), then the result is written under a private name and renamed into
    place. A file that no longer parses is simply replaced.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(_timing_lock(path)):
        if path.exists():
            try:
                other = config.create_timing_cache(path.read_bytes())
            except Exception:  # noqa: BLE001 - a file that does not parse is replaced, as for None
                other = None
            if other is not None and not cache.combine(other, False):  # (input_cache, ignore_mismatch)
                log(f"TensorRT: timing cache {path} could not be merged; overwriting it")
        atomic_write(path, bytes(cache.serialize()))


# ------------------------------------------------------------------------------ listing


@dataclass(frozen=True)
class CacheEntry:
    """One engine in the cache directory, as listed by ``esrgan-video engine list``."""

    sidecar: Path
    engine: Path
    model: str
    key: EngineKey | None
    size: int
    created: str
    problem: str
    """'' for a sound entry, else what is wrong (missing engine, unreadable sidecar...)."""
    outdated: bool = False
    """The sidecar is readable but its key is an older esrgan-video's (fields this one added are missing, or an
    older :data:`ENGINE_FORMAT`): never loaded, since no current key equals it; a new engine is built on use."""
    named: bool = True
    """The sidecar was read and names its model (False: no sidecar, or one that does not parse; ``model`` is '?')."""
    newer: bool = False
    """The sidecar's key records a newer :data:`ENGINE_FORMAT` than this version's (a newer esrgan-video wrote it):
    ``key`` is None and the entry is never loaded (the lookup names an entry by the digest of this version's key,
    and :func:`validate_entry` compares ``format`` too); this version builds its own engine beside it on use."""

    def describe(self) -> str:
        if self.newer:
            return f"{self.sidecar.name}  {self.model}  from a newer esrgan-video (rebuilt on use by this one): {self.problem}"
        if self.outdated:
            return f"{self.sidecar.name}  {self.model}  from an older esrgan-video, rebuilt on use ({self.problem})"
        if self.key is None:
            return f"{self.sidecar.name}: BROKEN ({self.problem})"
        k = self.key
        shape = "x".join(map(str, k.opt_shape)) if k.static else (
            f"{'x'.join(map(str, k.min_shape))}..{'x'.join(map(str, k.max_shape))}"
        )
        extra = f" fp32[{','.join(k.fp32_layers)}]" if k.fp32_layers else ""
        status = f" BROKEN ({self.problem})" if self.problem else ""
        return (
            f"{self.engine.name}  {self.model}  NxHxW {shape}  {k.precision}{extra}  TRT {k.trt_version} cu{k.cuda_major}  "
            f"{k.gpu_name} sm{k.compute_capability}  opt{k.opt_level}  {self.size / 2**20:.1f} MiB  {self.created}{status}"
        )


LATER_FIELDS = frozenset({"dynamic", "profiles", "cuda_major"})
"""Key fields that esrgan-video versions after the first layout (:data:`ENGINE_FORMAT` 1) added: ``dynamic`` and
``profiles`` (format 2), ``cuda_major`` (7f0d115). Only these may be missing from an older version's key."""


def _older_key(stored) -> bool:
    """Whether a stored key that :meth:`EngineKey.from_dict` refuses is a real older layout: it records a
    :data:`ENGINE_FORMAT` (every layout did, from the first) no newer than this one's, has no field this version does
    not know, and lacks only fields added later (:data:`LATER_FIELDS`), or records an older format. Anything else
    (no ``format``, unknown fields, core fields missing) is not one, and lists as BROKEN."""
    if not isinstance(stored, dict):
        return False
    names = {f.name for f in dataclasses.fields(EngineKey)}
    fmt = stored.get("format")
    if not isinstance(fmt, int) or isinstance(fmt, bool) or not 1 <= fmt <= ENGINE_FORMAT:
        return False
    missing, unknown = names - set(stored), set(stored) - names
    return not unknown and missing <= LATER_FIELDS and (bool(missing) or fmt < ENGINE_FORMAT)


def _newer_format(stored) -> int | None:
    """The :data:`ENGINE_FORMAT` a stored key records when it is newer than this version's (a newer esrgan-video's
    layout, whatever fields it holds), else None."""
    fmt = stored.get("format") if isinstance(stored, dict) else None
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > ENGINE_FORMAT:
        return fmt
    return None


def list_entries(root: Path | None = None) -> list[CacheEntry]:
    """Every sidecar under ``root`` (default :func:`engines_dir`), sound or broken, sorted by name."""
    root = engines_dir() if root is None else root
    if not root.is_dir():
        return []
    out = []
    for side in sorted(root.glob("*.engine" + SIDECAR_SUFFIX)):
        engine = side.with_name(side.name[: -len(SIDECAR_SUFFIX)])
        try:
            d = read_sidecar(side)
        except (ValueError, TypeError) as e:
            out.append(CacheEntry(side, engine, "?", None, 0, "", str(e), named=False))
            continue
        size = engine.stat().st_size if engine.exists() else 0
        newer = _newer_format(d["key"])
        if newer is not None:  # its fields may parse as this version's: still not a current key
            out.append(CacheEntry(side, engine, str(d["model"]), None, size, str(d.get("created", "")),
                                  f"key format {newer}, this one's {ENGINE_FORMAT}", newer=True))
            continue
        try:
            key = EngineKey.from_dict(d["key"])
        except (ValueError, TypeError, AttributeError) as e:  # the sidecar still names its model: clear --model finds it
            out.append(CacheEntry(side, engine, str(d["model"]), None, size, str(d.get("created", "")), str(e),
                                  outdated=_older_key(d["key"])))
            continue
        problem = ""
        if not engine.exists():
            problem = "engine file missing"
        elif size != d["engine_size"]:
            problem = f"size {size} != {d['engine_size']} recorded"
        out.append(CacheEntry(side, engine, str(d["model"]), key, size, str(d.get("created", "")), problem))
    for engine in sorted(root.glob("*.engine")):
        if not engine.with_name(engine.name + SIDECAR_SUFFIX).exists():
            out.append(CacheEntry(engine.with_name(engine.name + SIDECAR_SUFFIX), engine, "?", None,
                                  engine.stat().st_size, "", "engine without sidecar", named=False))
    return out


def outdated_timing_caches(root: Path | None = None) -> list[Path]:
    """Timing caches under ``root`` named by an esrgan-video older than 7f0d115 (``timing-trt<version>-<gpu>-sm<cc>``,
    no ``-cu<major>``): :func:`timing_cache_path` never names them, so they are never read again. Sorted; ``clear
    --all`` removes them with the rest."""
    root = engines_dir() if root is None else root
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("timing-trt*.timing") if not re.fullmatch(r"timing-trt[^-]*-cu[^-]+-.*", p.name))


def clear_entries(root: Path | None = None, *, model: str | None = None) -> list[Path]:
    """Delete engines (all, or those whose sidecar names ``model``); returns the deleted files.

    An entry whose key does not parse (an older esrgan-video's, say) goes with ``model`` when its sidecar names that
    model; entries without a readable sidecar (no sidecar, or one that does not parse) go with ``model=None`` only.
    A dangling link under an entry's name is removed like a file; what cannot be removed (a folder under an entry's
    name, a file the user may not delete) is left, everything else is removed, and then an :class:`OutputError`
    names the first such path.
    """
    removed: list[Path] = []
    kept: list[str] = []
    root = engines_dir() if root is None else root
    for entry in list_entries(root):
        if model is not None and (not entry.named or entry.model != model):
            continue
        for p in (entry.engine, entry.sidecar, entry.engine.with_name(entry.engine.name + ".lock")):
            _remove(p, removed, kept)
    if model is None:
        leftovers = ("timing-*.timing", "timing-*.timing.lock", "*.engine.lock", ".*.part")
        for p in [q for pat in leftovers for q in root.glob(pat)] if root.is_dir() else []:
            _remove(p, removed, kept)
    if kept:
        more = f" and {len(kept) - 1} other(s)" if len(kept) > 1 else ""
        raise OutputError(f"engine cache {root}: removed {len(removed)} file(s), but could not remove {kept[0]}{more}")
    return removed


def _remove(p: Path, removed: list[Path], kept: list[str]) -> None:
    """Delete the cache file ``p`` (a dangling link too) into ``removed``; what cannot go (a folder under a cache
    file's name, which is not ours to delete; a file the user may not delete) is said in ``kept``."""
    if not (p.is_symlink() or p.exists()):
        return
    if p.is_dir() and not p.is_symlink():
        kept.append(f"{p.name} (a folder, not a cache file: remove it yourself)")
        return
    try:
        p.unlink()
    except FileNotFoundError:
        return  # another process cleared it meanwhile
    except OSError as e:
        kept.append(f"{p.name} ({e.strerror or type(e).__name__})")
        return
    removed.append(p)
