"""``vsesrgan.upscale``: the VapourSynth face of esrgan-video's frame-level core.

The filter does no upscaling, tiling or colour maths of its own: each frame's planes go through the
core's frame transform (:class:`esrgan_video.frames.transform.FrameTransform`: upload, to-RGB, the clip's
one :class:`esrgan_video.upscaler.Upscaler`, the resize when the requested scale differs from the model's,
from-RGB, download) — the same object the streaming core behind the CLI runs.

Frame parallelism: VapourSynth serialises the calls of one ``std.ModifyFrame`` node, so the filter
returns ``std.FrameEval`` that hands each request a fresh ``ModifyFrame`` node (the idiom HolyWu's
vs-realesrgan uses). VapourSynth's worker threads (``core.num_threads``) then run frame callbacks
concurrently; torch releases the GIL while it works, and on a GPU each frame in flight checks out one
of ``num_streams`` CUDA streams, so uploads, inference and downloads of several frames overlap.
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from dataclasses import dataclass

import numpy as np
import torch
import vapoursynth as vs

from esrgan_video.frames.color import ColorSpec
from esrgan_video.frames.pixel_formats import PixelFormat
from esrgan_video.frames.sizing import output_size
from esrgan_video.frames.transform import FrameFormat, FrameTransform
from esrgan_video.errors import BackendError, EsrganVideoError, OptionError
from esrgan_video.options import BACKENDS, PRECISIONS, ModelOptions, RuntimeOptions, SizeOptions
from esrgan_video.runtime.base import NonFiniteOutputError
from esrgan_video.runtime.devices import parse_device, resolve_device
from esrgan_video.upscaler import Upscaler, non_finite_count, out_of_memory

from .props import adjusted_sar, props_from_spec, spec_from_props

NAME = "vsesrgan.upscale"
_OPTION_NAMES = {"streams": "num_streams"}
"""Option fields this face spells differently (VapourSynth's ``num_streams``, as in vs-mlrt)."""
_TO_RGBS = (
    "convert with core.resize.Bicubic(clip, format=vs.RGBS) (add matrix_in_s=\"709\" or the clip's matrix for YUV)"
)


def _error(message: str) -> vs.Error:
    return vs.Error(f"{NAME}: {message}")


def _one_of(names) -> str:
    """A regex alternation of ``names``, the longest first (``torch-tensorrt`` before ``torch``)."""
    return "|".join(sorted(map(re.escape, names), key=len, reverse=True))


_CLI_FLAG = re.compile(
    rf"--(?:(backend) ({_one_of(BACKENDS)})\b|(precision) ({_one_of(PRECISIONS)})\b"
    r"|(device) (cpu|cuda(?::\d+)?)\b|(scale|tile-pad|tile|streams) (\d+(?:\.\d+)?)\b"
    r"|(tile-pad|tile|blend|denoise|scale|streams)\b(?![-\w]))"
)


def _as_arguments(message: str) -> str:
    """A core message with the CLI's flags (``--backend torch``, ``--tile 256``, ``--streams 1``) spelt as this
    filter's arguments (``backend='torch'``, ``tile=256``, ``num_streams=1``); flags it has no argument for
    (``--size``, ``--devices``) are left as they are."""
    def argument(m: re.Match) -> str:
        found = [g for g in m.groups() if g is not None]  # the flag, then its value if it has one
        name = _OPTION_NAMES.get(found[0], found[0].replace("-", "_"))
        if len(found) == 1:
            return name
        return f"{name}={found[1]}" if name in ("scale", "tile", "tile_pad", "num_streams") else f"{name}={found[1]!r}"

    return _CLI_FLAG.sub(argument, message)


# formats ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClipFormat:
    """How the filter reads and writes one VapourSynth format."""

    vs_format: vs.VideoFormat
    pixfmt: PixelFormat | None
    """The core's descriptor of the integer planes; None for float RGB (RGBS/RGBH), which skip colour code."""

    @property
    def is_float(self) -> bool:
        return self.pixfmt is None

    @property
    def alpha_pixfmt(self) -> PixelFormat:
        """The integer planes with the ``_Alpha`` frame's plane after them (the core upscales it beside the colour)."""
        pf = self.pixfmt
        return dataclasses.replace(pf, name=f"{pf.name}+alpha", planes=(*pf.planes, "A"))

    @property
    def multiple(self) -> tuple[int, int]:
        """What the output width and height must be multiples of (the chroma subsampling)."""
        f = self.vs_format
        return 1 << f.subsampling_w, 1 << f.subsampling_h


def clip_format(clip: vs.VideoNode) -> ClipFormat:
    """Check a clip up front; :class:`vs.Error` saying what to do for clips the filter cannot take."""
    fmt = clip.format
    variable_format = fmt is None or fmt.color_family == vs.UNDEFINED
    variable_size = clip.width == 0 or clip.height == 0
    if variable_format and not variable_size:
        raise _error(
            f"the clip has a variable format (its {clip.width}x{clip.height} frames come in more than one format); "
            "give it one with core.resize.Bicubic(clip, format=vs.RGBS) (or the format you want) before upscaling"
        )
    if variable_size and not variable_format:  # the format is kept: only the size needs fixing
        raise _error(
            f"the clip has a variable size (its {fmt.name} frames come in more than one size); give it one with "
            "core.resize.Bicubic(clip, width=W, height=H) before upscaling"
        )
    if variable_format:
        raise _error(
            "the clip has a variable format and size; give it one with core.resize.Bicubic(clip, width=W, height=H, "
            "format=vs.RGBS) (or the format you want) before upscaling"
        )
    family = fmt.color_family
    if family not in (vs.RGB, vs.YUV, vs.GRAY):
        raise _error(f"{fmt.name} is not an RGB, YUV or GRAY format; {_TO_RGBS}")
    if fmt.sample_type == vs.FLOAT:
        if family == vs.RGB and fmt.bits_per_sample in (16, 32):
            return ClipFormat(fmt, None)
        raise _error(f"float {fmt.name} is not supported (float input must be RGBS or RGBH); {_TO_RGBS}")
    if not 8 <= fmt.bits_per_sample <= 16:
        raise _error(f"{fmt.name} has {fmt.bits_per_sample}-bit samples, 8 to 16 are supported; {_TO_RGBS}")
    if family == vs.YUV:
        pf = PixelFormat(
            f"vs:{fmt.name}", "yuv", fmt.bits_per_sample, fmt.subsampling_w, fmt.subsampling_h, ("Y", "U", "V")
        )
    elif family == vs.RGB:
        pf = PixelFormat(f"vs:{fmt.name}", "rgb", fmt.bits_per_sample, planes=("R", "G", "B"))
    else:
        pf = PixelFormat(f"vs:{fmt.name}", "gray", fmt.bits_per_sample, planes=("Y",))
    return ClipFormat(fmt, pf)


# the frame worker ---------------------------------------------------------------------------------
class _FrameWorker:
    """Upscales one frame per call; shared by every ModifyFrame node of one clip (thread-safe).

    The work is the core's frame transform, one per colour spec the clip's props give (usually one) and whether the
    frame carries an ``_Alpha`` frame (upscaled beside the colour, as the CLI upscales a yuva/gbrap alpha plane); it
    owns the CUDA streams (``num_streams`` frames on the device at once) and the pinned staging buffers.
    """

    def __init__(self, up: Upscaler, fmt: ClipFormat, in_size: tuple[int, int], out_size: tuple[int, int],
                 core: vs.Core, *, reuse: str = "off") -> None:
        self.up = up
        self.fmt = fmt
        self.in_size = in_size
        self.out_size = out_size
        self.core = core
        self.reuse = reuse
        self._transforms: dict[tuple[ColorSpec, bool], FrameTransform] = {}
        self._lock = threading.Lock()
        self._warned_interlaced = threading.Event()
        f = fmt.vs_format
        self.alpha_format = core.query_video_format(vs.GRAY, f.sample_type, f.bits_per_sample, 0, 0)
        """The format an ``_Alpha`` frame of this clip has: GRAY of the clip's sample type and depth."""

    def spec(self, props) -> ColorSpec:
        """The resolved colour facts of a frame (untagged → the mpv rule, like the CLI)."""
        if self.fmt.is_float:
            return ColorSpec()
        w, h = self.in_size
        return spec_from_props(props).resolved(w, h, self.fmt.pixfmt)

    def transform(self, spec: ColorSpec, alpha: bool = False) -> FrameTransform:
        """The frame transform for frames of this colour spec, with or without alpha (made once per kind)."""
        with self._lock:
            tr = self._transforms.get((spec, alpha))
            if tr is None:
                if self.fmt.is_float:
                    side = FrameFormat.float_rgb(torch.float16 if self.fmt.vs_format.bits_per_sample == 16
                                                 else torch.float32, alpha=alpha)
                else:
                    side = FrameFormat(self.fmt.alpha_pixfmt if alpha else self.fmt.pixfmt, spec)
                tr = self._transforms[spec, alpha] = FrameTransform(
                    self.up, src=side, dst=side, out_size=self.out_size, reuse=self.reuse,
                    notice=lambda msg: self.core.log_message(vs.MESSAGE_TYPE_WARNING, f"{NAME}: {msg}"),
                )
            return tr

    def planes(self, frame: vs.VideoFrame, spec: ColorSpec, alpha: vs.VideoFrame | None = None) -> list[np.ndarray]:
        """The upscaled planes of ``frame`` (and then of its ``alpha``) as host arrays in the clip's sample type."""
        planes = [np.asarray(frame[i]) for i in range(self.fmt.vs_format.num_planes)]
        if alpha is not None:
            planes.append(np.asarray(alpha[0]))
        return self.transform(spec, alpha is not None)(planes)

    def alpha(self, n: int, props) -> vs.VideoFrame | None:
        """The frame's ``_Alpha`` frame (None without one), checked against the clip's size and depth."""
        alpha = props.get("_Alpha")
        if alpha is None:
            return None
        want, (w, h) = self.alpha_format, self.in_size
        if not isinstance(alpha, vs.VideoFrame):
            raise _error(f"frame {n}: its _Alpha prop holds {type(alpha).__name__}, not a frame; attach a {want.name} "
                         f"clip of {w}x{h} with core.std.ClipToProp(clip, alpha, prop='_Alpha')")
        if alpha.format.id != want.id or (alpha.width, alpha.height) != (w, h):
            raise _error(f"frame {n}: its _Alpha frame is {alpha.format.name} {alpha.width}x{alpha.height}; the alpha "
                         f"of this clip must be {want.name} {w}x{h} (convert it with core.resize.Point(alpha, "
                         f"width={w}, height={h}, format=vs.{want.name.upper()}))")
        return alpha

    def _check_fields(self, n: int, props) -> None:
        field_based = props.get("_FieldBased", 0)
        if field_based in (1, 2) and not self._warned_interlaced.is_set():
            self._warned_interlaced.set()
            order = "bottom" if field_based == 1 else "top"
            self.core.log_message(
                vs.MESSAGE_TYPE_WARNING,
                f"{NAME}: frame {n} is interlaced (_FieldBased={field_based}, {order} field first); the model "
                "upscales it as a progressive frame and smears the fields together: deinterlace first "
                "(e.g. QTGMC) or upscale the separated fields (core.std.SeparateFields)",
            )

    def _failure(self, n: int, f: vs.VideoFrame, alpha: vs.VideoFrame | None, e: Exception) -> vs.Error:
        """The one-line error for a frame the core refused: non-finite float input is named as the input's fault, and an
        allocation failure gets the core's advice (:meth:`Upscaler.memory_error`: smaller ``tile=``), which
        ``upscale_tensor`` gives itself for one in the model (a BackendError, passed on as it is)."""
        if isinstance(e, NonFiniteOutputError) and self.fmt.is_float:
            # RGBS/RGBH can hold NaN/Inf (Expr divisions, some float filters): the model spreads them over the
            # whole tile, and the core's message would blame the weights and precision
            named = [("plane R", f[0]), ("plane G", f[1]), ("plane B", f[2])]
            for name, plane in named + ([("its _Alpha frame", alpha[0])] if alpha is not None else []):
                bad = non_finite_count(np.asarray(plane))
                if bad:
                    return _error(
                        f"frame {n}: {name} holds {bad} NaN or infinite sample(s); float input must be finite "
                        "(the model spreads them over the frame): replace them before upscaling, e.g. "
                        "core.std.Expr(clip, 'x x = x 0 ? 0 max 1 min')"
                    )
        w, h = self.in_size
        # a raw torch error where the transform itself allocates; a BackendError is the core's own words already
        # (Upscaler.upscale_tensor's advice for an allocation that failed in the model: wrapped once, there)
        memory = None if isinstance(e, BackendError) else self.up.memory_error(e, h, w)
        return _error(f"frame {n}: {_as_arguments(str(memory if memory is not None else e))}")

    def __call__(self, n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        self._check_fields(n, f.props)
        spec = self.spec(f.props)
        alpha = self.alpha(n, f.props)
        try:
            planes = self.planes(f, spec, alpha)
        except Exception as e:  # noqa: BLE001 - torch's out-of-memory errors are RuntimeErrors of its own
            # from None: VapourSynth writes the traceback of a callback's exception into the frame's error text;
            # the core's frames behind an error the user must act on are noise there (the last line says it all)
            if isinstance(e, (ValueError, EsrganVideoError)) or out_of_memory(e):
                raise self._failure(n, f, alpha, e) from None
            raise
        out_w, out_h = self.out_size
        fout = self.core.create_video_frame(self.fmt.vs_format, out_w, out_h)
        for i, p in enumerate(planes[:self.fmt.vs_format.num_planes]):
            np.copyto(np.asarray(fout[i]), p)
        props = fout.props
        props.update(f.props)
        if alpha is not None:  # the input's alpha is the input's size: the upscaled one replaces it
            aout = self.core.create_video_frame(alpha.format, out_w, out_h)
            np.copyto(np.asarray(aout[0]), planes[-1])
            aout.props.update(alpha.props)
            props["_Alpha"] = aout
        if not self.fmt.is_float and self.fmt.pixfmt.family != "rgb":
            props.update(props_from_spec(spec, chroma=self.fmt.pixfmt.family == "yuv"))
        sar = adjusted_sar(f.props, self.in_size, self.out_size)
        if sar is not None:
            props["_SARNum"], props["_SARDen"] = sar
        return fout


# the filter ---------------------------------------------------------------------------------------
def upscale(
    clip: vs.VideoNode,
    model: str | os.PathLike | torch.nn.Module = "RealESRGAN_x4plus",
    scale: float | None = None,
    tile: int | None = None,
    tile_pad: int | None = None,
    backend: str = "auto",
    precision: str | None = None,
    device: int | str | torch.device = 0,
    num_streams: int = 2,
    blend: str | tuple[str, float] | None = None,
    denoise: float | None = None,
    reuse: str = "exact",
) -> vs.VideoNode:
    """Upscale ``clip`` with an ESRGAN-family or compact model; returns a clip in the same format family and depth.

    :param clip: RGBS, RGBH, integer RGB (RGB24/RGB30/RGB48, 8–16 bit), YUV of any subsampling
        (8–16 bit) or GRAY (8–16 bit, upscaled as neutral RGB and returned as its luma). YUV and GRAY
        are converted with the frame props ``_Matrix``, ``_Range``, ``_ChromaLocation`` (untagged:
        BT.709 from 1280 wide or 577 lines up, else BT.601; limited range; left chroma). An ``_Alpha`` frame
        prop (GRAY of the clip's sample type, depth and size, as BestSource attaches it) is upscaled beside the
        colour, as a grey image (what the CLI does with an alpha plane), and replaced by the upscaled alpha.
    :param model: a registry name (``esrgan-video models``), a checkpoint path (.safetensors,
        .pth, ncnn .param) or a loaded network (:class:`~esrgan_video.arch.RRDBNet` or
        :class:`~esrgan_video.arch.SRVGGNetCompact`, e.g. from :func:`esrgan_video.load_model`).
    :param scale: output size over input size; None: the model's scale. Other scales resize the
        model's output with the CLI's antialiased bicubic, on the device.
    :param tile: tile size in input pixels (0: whole frames; None: a stable default per frame size).
    :param tile_pad: overlap of tiles in input pixels (None: the core's default).
    :param backend: ``auto``, ``torch``, ``onnxruntime`` (CPU), ``tensorrt`` or ``torch-tensorrt``.
    :param precision: ``fp32``, ``fp16`` or ``bf16``; None: the backend's default.
    :param device: CUDA index (0 = ``cuda:0``, the CPU on a machine without CUDA), ``"cpu"`` or ``"cuda:N"``.
    :param num_streams: frames in flight on a GPU (one CUDA stream each).
    :param blend: ``"OTHER:alpha"`` network interpolation with another model.
    :param denoise: denoise strength in [0, 1] for models with a denoising partner (realesr-general-x4v3), as
        the CLI's ``--denoise``; None: the model as it is.
    :param reuse: ``"exact"`` (default) or ``"off"``: with ``exact`` a tile (or frame) whose input is
        bit-identical to the frame last upscaled takes that frame's output instead of running the model — no
        output bit changes, whatever order VapourSynth asks for frames in. ``"near"`` is refused here: its output depends on which frame
        came before, and VapourSynth asks for frames in any order.
    """
    if not isinstance(clip, vs.VideoNode):
        raise _error(f"clip: expected a vs.VideoNode, got {type(clip).__name__}")
    fmt = clip_format(clip)
    if reuse == "near":
        raise _error("reuse='near' is refused here: its output depends on the order frames are requested in, which "
                     "VapourSynth does not fix; use reuse='exact' (bit-identical) or the CLI's --reuse near")
    if reuse not in ("exact", "off"):  # RuntimeOptions' own message would offer 'near' too
        raise _error(f"reuse: expected 'exact' or 'off', got {reuse!r}")
    try:
        size = SizeOptions(scale=scale)
        runtime = RuntimeOptions(tile=tile, tile_pad=tile_pad, backend=backend, precision=precision, device=device,
                                 streams=num_streams, reuse=reuse)
        model_opts = ModelOptions(model=model, blend=blend, denoise=denoise)
    except OptionError as e:
        raise _error(str(e.relabel(_OPTION_NAMES))) from e
    on_cpu_for_0 = False  # resolve_device's fall-back was taken: device=0 asked for, the CPU given
    try:
        # device=0 (the default: a GPU index, as in vs-mlrt) runs on the CPU of a machine without CUDA; an explicit
        # 'cuda' / 'cuda:N' there is refused
        dev = resolve_device(device, cpu_if_no_cuda=type(device) is int and device == 0)
        on_cpu_for_0 = dev.type == "cpu" and parse_device(device) != "cpu"
        up = Upscaler(model_opts, dataclasses.replace(runtime, device=str(dev)))
        out_w, out_h = output_size(
            clip.width, clip.height, model_scale=up.scale, scale=size.scale, multiple=fmt.multiple,
        )
        # Build the backend (a TensorRT engine, if that is what runs) now, for this clip's tile shape:
        # a missing backend fails here, at script evaluation, and no frame request pays for the build.
        up.prepare(clip.height, clip.width)
    except EsrganVideoError as e:
        message = _as_arguments(str(e))
        if on_cpu_for_0 and isinstance(e, BackendError):  # e.g. a backend that needs CUDA: say why it has none
            message += "; device 0 runs on the CPU here: no CUDA GPU is available"
        raise _error(message) from None
    core = vs.core
    worker = _FrameWorker(up, fmt, (clip.width, clip.height), (out_w, out_h), core, reuse=runtime.reuse)
    shape = core.std.BlankClip(clip, width=out_w, height=out_h, keep=True)

    def per_request(n: int) -> vs.VideoNode:
        return core.std.ModifyFrame(shape, clip, worker)

    return shape.std.FrameEval(per_request, clip_src=clip)


__all__ = ["upscale", "clip_format", "ClipFormat"]
