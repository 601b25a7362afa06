"""The options of a run, each defined, documented and validated once.

Every face (the CLI, ``upscale_video``, ``Upscaler``, batch workers, ``vsesrgan.upscale``) builds
these frozen, keyword-only dataclasses and passes them down whole, as vs-mlrt passes one options
object per backend. A bad value raises :class:`~esrgan_video.errors.OptionError` (exit status 2)
naming the option, what was expected and what was given, where the value enters.

- :class:`ModelOptions` — which network: a registry name or checkpoint, network interpolation, denoise.
- :class:`RuntimeOptions` — where and how it runs: backend, device, precision, streams, tiles, reuse.
- :class:`SizeOptions` — the output frame size.
- :class:`EncodeOptions` — the encoder and the output container.
- :class:`TrimOptions` — the part of the input to upscale.
- :class:`UpscaleOptions` — the five together (what ``upscale_video`` and batch take).

The Python API also takes the fields as flat keyword arguments (``upscale_video(src, dst, model=...,
scale=2, codec="libx265")``): :meth:`UpscaleOptions.from_kwargs` routes each name to its group.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Mapping

from .errors import OptionError

DEFAULT_MODEL = "RealESRGAN_x4plus"
BACKENDS = ("auto", "torch", "onnxruntime", "tensorrt", "torch-tensorrt")
PRECISIONS = ("fp16", "bf16", "fp32")
REUSE_MODES = ("off", "exact", "near")
FIT_MODES = ("pad", "crop", "stretch")

_OUTPUT = "output"
"""Field metadata key: False for options that never change an output's bytes (batch's options hash skips them)."""


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, Fraction)) and not isinstance(v, bool)


def _freeze(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


# parsing of the forms users type ---------------------------------------------------------------
def parse_time(text: str) -> Fraction | int:
    """``"12.5"`` / ``"1:02.5"`` / ``"01:00:02"`` → seconds (Fraction); ``"120f"`` → frame index 120."""
    t = text.strip()
    if re.fullmatch(r"\d+f", t):
        return int(t[:-1])
    parts = t.split(":")
    if len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts):
        raise OptionError("time", "seconds (12.5), [HH:]MM:SS(.ms) or a frame number (120f)", text)
    seconds = Fraction(0)
    for p in parts:
        seconds = seconds * 60 + Fraction(p)
    return seconds


def parse_size(text: str) -> tuple[int | None, int | None]:
    """``"1920x1080"``, ``"1920x"`` / ``"1920x-1"`` (derive the height) or ``"x1080"`` → (w, h), None = derive."""
    m = re.fullmatch(r"\s*(\d*|-1)\s*[x×:]\s*(\d*|-1)\s*", text)
    if not m or (m.group(1) in ("", "-1") and m.group(2) in ("", "-1")):
        raise OptionError("size", "WxH, Wx or xH (e.g. 1920x1080)", text)
    w = int(m.group(1)) if m.group(1) not in ("", "-1") else None
    h = int(m.group(2)) if m.group(2) not in ("", "-1") else None
    if (w is not None and w < 1) or (h is not None and h < 1):
        raise OptionError("size", "a positive width and height", text)
    return w, h


def parse_encoder_opt(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` → ``(KEY, VALUE)``."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise OptionError("encoder_opt", "KEY=VALUE", text)
    return key, value


# the groups --------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ModelOptions:
    """Which network upscales."""

    model: Any = DEFAULT_MODEL
    """A registry name (``esrgan-video models``), a checkpoint path (.safetensors, .pth, ncnn .param) or a loaded
    generator module."""
    blend: tuple[str, float] | None = None
    """Network interpolation with a second model (ESRGAN §3.4): ``("OTHER", alpha)``, or ``"OTHER:alpha"``;
    θ = (1 − α)·θ_model + α·θ_other."""
    denoise: float | None = None
    """Denoise strength in [0, 1] for models with a denoising partner (realesr-general-x4v3): network
    interpolation between the two, as Real-ESRGAN's ``dni`` does. None: the model as it is."""
    offline: bool = False
    """Never download; use cached models only (also ``ESRGAN_VIDEO_OFFLINE=1``)."""

    def __post_init__(self) -> None:
        m = self.model
        if isinstance(m, os.PathLike):
            _freeze(self, "model", os.fspath(m))
        elif isinstance(m, str):
            if not m.strip():
                raise OptionError("model", "a registry name or a checkpoint path", m)
        elif not _is_module(m):
            raise OptionError("model", "a registry name, a checkpoint path or a loaded model", m)
        if self.blend is not None:
            from .models.interpolate import parse_blend

            if _is_module(self.model):
                raise OptionError("blend", "a model given by name or path (a loaded module cannot be blended)", self.blend)
            try:
                _freeze(self, "blend", parse_blend(self.blend))
            except ValueError as e:
                raise OptionError("blend", "OTHER_MODEL:ALPHA with 0 <= ALPHA <= 1", self.blend, detail=str(e)) from e
        if self.denoise is not None:
            if not _is_number(self.denoise) or not 0.0 <= float(self.denoise) <= 1.0:
                raise OptionError("denoise", "a strength between 0 and 1", self.denoise)
            if _is_module(self.model):
                raise OptionError("denoise", "a model given by name or path (a loaded module has no denoise partner)",
                                  self.denoise)
            _freeze(self, "denoise", float(self.denoise))
        if not isinstance(self.offline, bool):
            raise OptionError("offline", "True or False", self.offline)


def _is_module(m: object) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return isinstance(m, torch.nn.Module)


@dataclass(frozen=True, kw_only=True)
class RuntimeOptions:
    """Where and how the network runs."""

    backend: str = "auto"
    """``auto`` (TensorRT > torch CUDA > ONNX Runtime CPU > torch CPU, by what is installed and present),
    ``tensorrt``, ``torch-tensorrt``, ``torch`` or ``onnxruntime``."""
    device: str | None = field(default=None, metadata={_OUTPUT: False})
    """``cpu``, ``cuda`` or ``cuda:N`` (an int N means ``cuda:N``); None: the first CUDA device if present, else
    the CPU. Normalised to ``"cpu"``/``"cuda:N"``; whether the device exists is checked when it is opened."""
    precision: str | None = None
    """``fp16``, ``bf16`` or ``fp32``; None: fp16 on a GPU, fp32 on the CPU."""
    streams: int = field(default=2, metadata={_OUTPUT: False})
    """CUDA streams (frames in flight) on a GPU; the CPU runs one. Frames keep their order: the output is the same."""
    tile: int | None = None
    """Core tile in input pixels; 0 = whole frames; None = a stable default per frame size and device."""
    tile_pad: int | None = None
    """Overlap on each side of a tile in input pixels; None = the architecture's default."""
    batch: int | None = None
    """Tiles per inference call; None = 4 on a GPU, 1 on the CPU."""
    reuse: str = "exact"
    """Reuse of unchanged tiles and frames (``esrgan_video.frames.reuse``): ``exact`` (the default: a tile or frame
    whose input is bit-identical to the previous frame's takes its output; changes no output bit), ``near`` (also
    reuses inputs within a calibrated bound of the frame whose output is reused: the repeats of H.264/HEVC video on
    twos; changes pixels slightly) or ``off``."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise OptionError("backend", f"one of {', '.join(BACKENDS)}", self.backend)
        from .runtime.devices import parse_device

        _freeze(self, "device", parse_device(self.device))
        if self.precision is not None and self.precision not in PRECISIONS:
            raise OptionError("precision", f"one of {', '.join(PRECISIONS)}", self.precision)
        if not _is_int(self.streams) or self.streams < 1:
            raise OptionError("streams", "an integer >= 1", self.streams)
        if self.tile is not None and (not _is_int(self.tile) or self.tile < 0):
            raise OptionError("tile", "0 (whole frame) or a positive size in pixels", self.tile)
        if self.tile_pad is not None and (not _is_int(self.tile_pad) or self.tile_pad < 0):
            raise OptionError("tile_pad", "an integer >= 0", self.tile_pad)
        if self.batch is not None and (not _is_int(self.batch) or self.batch < 1):
            raise OptionError("batch", "an integer >= 1", self.batch)
        if self.reuse not in REUSE_MODES:
            raise OptionError("reuse", f"one of {', '.join(REUSE_MODES)}", self.reuse)


@dataclass(frozen=True, kw_only=True)
class SizeOptions:
    """The output frame size."""

    scale: float | None = None
    """Output size / input size; None: the model's scale. Other scales resize the model's output on the device."""
    size: tuple[int | None, int | None] | None = None
    """A target (width, height) instead of a scale (``"1920x1080"``, ``"1920x"`` or ``"x1080"``); a missing side
    is derived from the display aspect."""
    fit: str | None = None
    """With both sides of ``size`` given: None keeps the display aspect by setting the output's sample aspect
    ratio; ``pad``, ``crop`` or ``stretch`` make square-pixel frames of exactly that size."""
    square_pixels: bool = False
    """Resample anamorphic sources to square pixels at the upscale."""

    def __post_init__(self) -> None:
        if self.scale is not None:
            if not _is_number(self.scale) or not math.isfinite(float(self.scale)) or not float(self.scale) > 0:
                raise OptionError("scale", "a positive number", self.scale)
            _freeze(self, "scale", float(self.scale))
        if self.size is not None:
            size = parse_size(self.size) if isinstance(self.size, str) else self.size
            try:
                w, h = size
            except (TypeError, ValueError) as e:
                raise OptionError("size", "(width, height) with None for a side to derive", self.size) from e
            if w is None and h is None or any(v is not None and (not _is_int(v) or v < 1) for v in (w, h)):
                raise OptionError("size", "(width, height): positive integers, at most one None", self.size)
            _freeze(self, "size", (w, h))
        if self.scale is not None and self.size is not None:
            raise OptionError("scale", "either a scale or a size, not both", f"scale {self.scale:g} and size "
                              f"{self.size[0] or ''}x{self.size[1] or ''}")
        if self.fit is not None and self.fit not in FIT_MODES:
            raise OptionError("fit", f"one of {', '.join(FIT_MODES)}", self.fit)
        if self.fit is not None and (self.size is None or None in self.size):
            raise OptionError("fit", "a size with both a width and a height (--size WxH)", self.fit)
        if not isinstance(self.square_pixels, bool):
            raise OptionError("square_pixels", "True or False", self.square_pixels)


DEFAULT_CODEC = "libx264"
"""The encoder written when none is asked for, except where the container has its own (:data:`CONTAINER_CODECS`)."""
CONTAINER_CODECS: dict[str, str] = {"webm": "libvpx-vp9", "apng": "apng", "webp": "libwebp_anim",
                                    "yuv4mpegpipe": "rawvideo"}
"""Containers (FFmpeg muxer names) whose usual encoder is not :data:`DEFAULT_CODEC`, which they cannot hold."""


DEFAULT_CRF: dict[str, int] = {"libx264": 16, "libx265": 18, "libsvtav1": 22, "libvpx-vp9": 24}
"""The project's CRF per encoder when the user chose no rate control (each at the encoder's default preset;
``video.encoder_settings`` applies it)."""
ENCODER_DEFAULT_CRF: dict[str, int] = {"libx264": 23, "libx265": 28, "libsvtav1": 35, "libvpx-vp9": 32}
"""What the encoders themselves use without a crf (for the benchmark and the docs)."""
DEFAULT_CQ: dict[str, int] = {"h264_nvenc": DEFAULT_CRF["libx264"], "hevc_nvenc": DEFAULT_CRF["libx265"],
                              "av1_nvenc": DEFAULT_CRF["libsvtav1"]}
"""NVENC's ``cq`` when the user chose no rate control: the project's CRF of the CPU encoder of the same format
(:data:`DEFAULT_CRF`: libx264 16, libx265 18, libsvtav1 22), as tools that take one quality number for both do
(``--crf N`` is ``cq N``). NVENC's CQ is a QP-like target on those CRFs' scales (H.264/HEVC QP 0-51; AV1 0-63, as
SVT-AV1's CRF), so one number means about one quantizer, and so about one quality; NVENC, a hardware encoder, spends
more bits on it. Not calibrated on an NVENC GPU here (none was at hand: the H100/H200 have no NVENC)."""


def codec_for(muxer: str | None) -> str:
    """The encoder for an output in container ``muxer`` when ``--codec`` is not given (pure)."""
    return CONTAINER_CODECS.get(muxer or "", DEFAULT_CODEC)


@dataclass(frozen=True, kw_only=True)
class EncodeOptions:
    """The encoder and the output container."""

    codec: str | None = None
    """FFmpeg encoder name: libx264, libx265, libsvtav1, ffv1, prores_ks, h264_nvenc, hevc_nvenc, … (a codec's name,
    ``vp9``, ``h264``, is kept as the encoder FFmpeg opens for it: libvpx-vp9, libx264); None: the
    container's usual one (:func:`codec_for`: libx264, or libvpx-vp9 in WebM, apng in APNG, libwebp_anim in WebP,
    rawvideo in yuv4mpegpipe), chosen when the output is known. One this FFmpeg build lacks (closest names said), or
    an audio encoder: OptionError."""
    crf: float | None = None
    """Constant rate factor / quality; None: the project's high-quality default for the encoder."""
    preset: str | None = None
    """Encoder preset (e.g. veryfast, slow); None: the encoder's default."""
    pix_fmt: str | None = None
    """Output pixel format; None: the input's family and bit depth, as close as the encoder allows. A name that is
    no format this program writes (``frames.pixel_formats``): OptionError, with the closest names; one the encoder
    does not take: the writer's OutputError, listing those it does."""
    encoder_opts: tuple[tuple[str, str], ...] = ()
    """Extra encoder options as (key, value) pairs (a dict or ``"KEY=VALUE"`` strings are accepted)."""
    format: str | None = None
    """Container format name (``matroska``, ``nut``, ``yuv4mpegpipe``, …); None: from the output's extension.
    Needed when writing to a pipe (``-``)."""
    copy_streams: bool = True
    """Copy audio, subtitles, attachments and data streams from the input."""
    audio: bool = True
    """Copy the input's audio streams (``--no-audio``: False)."""
    subtitles: bool = True
    """Copy the input's subtitle streams (``--no-subs``: False). Text subtitles become ``mov_text`` in MP4/MOV."""
    streams_keep: tuple[int, ...] | None = None
    """Copy only these input stream indices (``--streams-keep 1,3``, as ``ffprobe`` numbers them; the upscaled
    video stream is always written); None: every stream. Also ``"1,3"`` or a list."""
    verbose: bool = field(default=False, metadata={_OUTPUT: False})
    """Let FFmpeg and the encoders print their own log lines (x265's ``[info]`` block, SVT-AV1's, FFmpeg's
    decoder messages); off, only what the run has to tell goes through its notices."""
    shift_timestamps: bool = field(default=True, metadata={_OUTPUT: False})
    """Shift trimmed outputs to start at zero (batch segments keep the source's times so they can be joined)."""

    def __post_init__(self) -> None:
        if self.codec is not None and (not isinstance(self.codec, str) or not self.codec.strip()):
            raise OptionError("codec", "an FFmpeg encoder name such as libx264", self.codec)
        if self.codec is not None:
            from .video.encoder_formats import check_encoder_name

            # a codec's name (vp9, h264, hevc) opens FFmpeg's first encoder of it: named as that encoder, so its
            # default CRF and preset (``video.encoder_settings``), libx264's determinism and batch's options hash
            # are that encoder's (``--codec vp9`` wrote libvpx-vp9 without its CRF 24, and hashed apart from it);
            # one this FFmpeg lacks, or not a video encoder, is refused here (it was exit 6 from the writer)
            _freeze(self, "codec", check_encoder_name(self.codec))
        if self.crf is not None:
            if not _is_number(self.crf) or not math.isfinite(float(self.crf)) or float(self.crf) < 0:
                raise OptionError("crf", "a number >= 0", self.crf)
            crf = float(self.crf)
            _freeze(self, "crf", int(crf) if crf.is_integer() else crf)
        for name in ("preset", "pix_fmt", "format"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, str) or not v.strip()):
                raise OptionError(name, "a name", v)
        if self.pix_fmt is not None:
            _check_pix_fmt(self.pix_fmt)
        _freeze(self, "encoder_opts", _pairs(self.encoder_opts))
        if self.streams_keep is not None:
            _freeze(self, "streams_keep", _indices(self.streams_keep))
        for name in ("copy_streams", "audio", "subtitles", "verbose", "shift_timestamps"):
            if not isinstance(getattr(self, name), bool):
                raise OptionError(name, "True or False", getattr(self, name))

    @property
    def encoder_options(self) -> dict[str, str]:
        """``encoder_opts`` as a dict (later keys win)."""
        return dict(self.encoder_opts)


def _check_pix_fmt(name: str) -> None:
    """OptionError for a ``pix_fmt`` that is no pixel format this program writes (``nosuch``, ``yuv420``), with the
    closest ones; which of them an encoder takes is the writer's question (``encoder_formats.choose_pix_fmt``)."""
    from .errors import did_you_mean
    from .frames.pixel_formats import BIG_ENDIAN, SUPPORTED_PIX_FMTS, is_supported

    if not is_supported(name):
        hint = did_you_mean(name, (*SUPPORTED_PIX_FMTS, *BIG_ENDIAN), n=3)
        raise OptionError("pix_fmt", "a pixel format such as yuv420p, yuv420p10le, yuv444p, gbrp, rgb24 or gray", name,
                          detail=hint)


def _indices(value: object) -> tuple[int, ...]:
    """``"1,3"`` / ``[1, 3]`` → ``(1, 3)``: stream indices, each >= 0, no repeats, sorted."""
    items = value.replace(" ", "").split(",") if isinstance(value, str) else value
    try:
        out = [int(v) if isinstance(v, str) and v.isdigit() else v for v in items]  # type: ignore[union-attr]
    except TypeError:
        raise OptionError("streams_keep", "stream indices such as 1,3", value) from None
    if not out or not all(_is_int(v) and v >= 0 for v in out):
        raise OptionError("streams_keep", "stream indices such as 1,3 (integers >= 0)", value)
    return tuple(sorted(set(out)))


def _pairs(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        items = list(value.items())
    elif isinstance(value, (list, tuple)):
        items = [parse_encoder_opt(v) if isinstance(v, str) else v for v in value]
    else:
        raise OptionError("encoder_opts", "a dict or KEY=VALUE strings", value)
    out = []
    for item in items:
        try:
            k, v = item
        except (TypeError, ValueError) as e:
            raise OptionError("encoder_opts", "(key, value) pairs", value) from e
        if not str(k):
            raise OptionError("encoder_opts", "non-empty keys", value)
        out.append((str(k), str(v)))
    return tuple(out)


@dataclass(frozen=True, kw_only=True)
class TrimOptions:
    """The part of the input to upscale: ``start <= t < end``."""

    start: Fraction | int | None = None
    """First kept time: seconds (Fraction/float, or text: ``12.5``, ``[HH:]MM:SS(.ms)``) or a frame index (int,
    or text ``120f``), counted from the container start."""
    end: Fraction | int | None = None
    """End (exclusive), same forms as ``start``."""

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, str):
                try:
                    v = parse_time(v)
                except OptionError as e:
                    raise OptionError(name, e.expected, e.got) from None
            elif isinstance(v, float):
                if not math.isfinite(v):
                    raise OptionError(name, "a finite time", v)
                v = Fraction(v).limit_denominator(1_000_000)
            elif not (_is_int(v) or isinstance(v, Fraction)):
                raise OptionError(name, "seconds, [HH:]MM:SS(.ms) or a frame number (120f)", v)
            if v < 0:
                raise OptionError(name, "a time or frame number >= 0", v)
            _freeze(self, name, v)


GROUPS: dict[str, type] = {
    "model": ModelOptions,
    "runtime": RuntimeOptions,
    "size": SizeOptions,
    "encode": EncodeOptions,
    "trim": TrimOptions,
}
FIELD_GROUP: dict[str, str] = {f.name: g for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}
"""Flat option name → the group that holds it (every name is unique across the groups)."""


@dataclass(frozen=True, kw_only=True)
class UpscaleOptions:
    """Everything a video run is asked for, passed whole through every face."""

    model: ModelOptions = field(default_factory=ModelOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    size: SizeOptions = field(default_factory=SizeOptions)
    encode: EncodeOptions = field(default_factory=EncodeOptions)
    trim: TrimOptions = field(default_factory=TrimOptions)

    def __post_init__(self) -> None:
        for name, cls in GROUPS.items():
            if not isinstance(getattr(self, name), cls):
                raise OptionError(name, cls.__name__, getattr(self, name))

    @classmethod
    def from_kwargs(cls, base: "UpscaleOptions | None" = None, **flat: Any) -> "UpscaleOptions":
        """Options from flat keyword names (``model=``, ``scale=``, ``codec=``, …) over ``base`` (default: the
        defaults). A group passed by its name (``runtime=RuntimeOptions(...)``) replaces that group; an unknown
        name raises ``TypeError`` listing the known ones."""
        if base is not None and not isinstance(base, UpscaleOptions):
            group = next((g for g, c in GROUPS.items() if isinstance(base, c)), None)
            hint = (f"pass it as {group}={type(base).__name__}(...)" if group is not None else
                    "give a mapping's entries as keywords: **options" if isinstance(base, Mapping) else
                    "give the options as keywords instead (scale=2, tile=256, ...)")
            raise TypeError(f"options: expected an UpscaleOptions, got {type(base).__name__}; {hint}")
        base = base or cls()
        groups = {name: getattr(base, name) for name in GROUPS}
        per_group: dict[str, dict[str, Any]] = {}
        for key, value in flat.items():
            if key in GROUPS and isinstance(value, GROUPS[key]):
                groups[key] = value
                continue
            if key in GROUPS and key not in FIELD_GROUP:  # runtime=, encode=, trim=: a group, not a field
                raise TypeError(f"{key}: expected a {GROUPS[key].__name__}, got {type(value).__name__} (or give its "
                                f"fields as keywords: {', '.join(f.name + '=' for f in dataclasses.fields(GROUPS[key]))})")
            group = FIELD_GROUP.get(key)
            if group is None:
                raise TypeError(f"unknown option {key!r}; known: {', '.join(sorted(FIELD_GROUP))}")
            per_group.setdefault(group, {})[key] = value
        for group, values in per_group.items():
            groups[group] = dataclasses.replace(groups[group], **values)
        return cls(**groups)

    def replace(self, **flat: Any) -> "UpscaleOptions":
        """A copy with some flat options changed (``opts.replace(start=..., copy_streams=False)``)."""
        return UpscaleOptions.from_kwargs(self, **flat)

    def flat(self) -> dict[str, Any]:
        """Every option by its flat name."""
        return {f.name: getattr(getattr(self, g), f.name) for g, cls in GROUPS.items() for f in dataclasses.fields(cls)}

    def output_affecting(self, codec: str | None = None) -> dict[str, Any]:
        """The options that can change an output's bytes (what batch's options hash covers), by flat name; the
        model itself is identified by its weights' hash instead, and the device, the streams and similar are left
        out. ``reuse`` is ``near`` or ``exact``: ``off`` writes the same bytes as ``exact``.

        ``codec``: the encoder an output's container takes when none is asked for (``writer.output_codec`` of the
        output, what batch gives for each file). With it, a value the encoder would use anyway stands as if it were
        not given (:func:`encoding_defaults_unset`): ``codec`` is ``libx264`` for the container's usual encoder,
        asked for or not (what the default was before it followed the container, so earlier records stand), and a
        ``crf`` or ``preset`` equal to that encoder's default is None (``--codec vp9`` is ``libvpx-vp9`` already:
        :class:`EncodeOptions` keeps FFmpeg's encoder name); a ``crf`` (NVENC: ``cq``) or ``preset`` in ``encoder_opts``
        stands as the flag that gives the encoder the same option (``video.encoder_settings.options_as_flags``:
        ``--encoder-opt crf=24`` is ``--crf 24``), before the defaults are compared. Without it, every option stands as given
        (``codec`` None as ``libx264``): what batch's records were made with before."""
        out = {}
        for g, cls in GROUPS.items():
            for f in dataclasses.fields(cls):
                if f.metadata.get(_OUTPUT, True) and not (g == "model" and f.name in ("model", "offline")):
                    out[f.name] = getattr(getattr(self, g), f.name)
        out["reuse"] = "near" if out["reuse"] == "near" else "exact"
        if codec is not None:
            from .video.encoder_settings import options_as_flags

            used = out["codec"] or codec  # the encoder this output is written with
            # --encoder-opt crf=24 is --crf 24 (the same option given the encoder), preset=slow --preset slow
            out["crf"], out["preset"], out["encoder_opts"] = options_as_flags(used, out["crf"], out["preset"],
                                                                              out["encoder_opts"])
            out["crf"], out["preset"] = encoding_defaults_unset(used, out["crf"], out["preset"], out["encoder_opts"])
        if out["codec"] is None or out["codec"] == codec:  # the container's usual encoder: libx264 wherever it was
            out["codec"] = DEFAULT_CODEC  # the default before it followed the container
        return out


def encoding_defaults_unset(codec: str, crf: float | None, preset: str | None,
                            encoder_opts: tuple[tuple[str, str], ...] = ()) -> tuple[float | None, str | None]:
    """``(crf, preset)`` with each that encoder ``codec`` would use without it replaced by None: the same bytes
    either way, so batch's options hash takes them as one (a rerun with ``--crf 16`` keeps what a run without it
    made). ``crf``: :data:`DEFAULT_CRF` (NVENC: :data:`DEFAULT_CQ`, its ``cq``), which ``video.encoder_settings``
    gives the encoder when no rate control is asked for, so only when ``encoder_opts`` choose none (with ``qp=0``,
    no ``--crf`` means no CRF at all). ``preset``: the encoder's own default by name, ``medium`` for libx264 and
    libx265 (also by its number, 5, which they take as that name; the same bytes, checked with PyAV's x264 and
    x265), NVENC's ``p4`` (FFmpeg's default, the same constant; not its ``medium``, another one), unless
    ``encoder_opts`` give a ``preset`` of their own (which an explicit one overrides). Other encoders' defaults
    (SVT-AV1's number, which depends on its version) are left as given."""
    from .video.encoder_settings import PRESET_TABLE, default_crf, default_preset

    opts = dict(encoder_opts)
    default = default_crf(codec, opts)
    if crf is not None and default is not None and float(crf) == default:
        crf = None
    default_name = default_preset(codec)
    if preset is not None and default_name is not None and "preset" not in opts:
        names = {default_name}
        if codec in PRESET_TABLE:
            names.add(str(PRESET_TABLE[codec].index(default_name)))
        if preset.strip() in names:
            preset = None
    return crf, preset

__all__ = [
    "ModelOptions", "RuntimeOptions", "SizeOptions", "EncodeOptions", "TrimOptions", "UpscaleOptions",
    "parse_time", "parse_size", "parse_encoder_opt", "codec_for", "CONTAINER_CODECS", "DEFAULT_CODEC", "DEFAULT_CRF",
    "ENCODER_DEFAULT_CRF", "DEFAULT_MODEL", "BACKENDS", "PRECISIONS", "REUSE_MODES", "encoding_defaults_unset",
    "FIT_MODES", "FIELD_GROUP",
]
