"""The encoder's quality settings: the project's high-quality defaults per encoder, checks, and the line the
summary prints.

A restoration tool should not throw away what the model made: without ``--crf`` (and without a rate control of
the user's own in ``--encoder-opt``: ``crf``, ``qp``, ``b``, ``cq``, ``lossless``, or a crf/qp/bitrate/lossless
key inside ``x264-params`` / ``x265-params`` / ``svtav1-params``), the encoders below get a CRF well above their
own defaults (libx264 23, libx265 28, libsvtav1 35, libvpx-vp9 32), at their default preset. ``benchmarks/encoder_quality.py``
measures these against the encoders' own defaults (PSNR against a lossless encode, size, encode fps).
Fractional CRF is passed where the encoder's ``crf`` option is a float (x264, x265) and refused, as a
command-line error, where it is an integer (SVT-AV1, VP9).

NVENC (``h264_nvenc``, ``hevc_nvenc``, ``av1_nvenc``) has no ``crf``: given no rate control, FFmpeg's NVENC runs VBR
at its default bitrate, 2 Mb/s (NVENC's own default ``b``, 2000000, where x264's, x265's, SVT-AV1's and VP9's is 0),
far too little for an upscaled 1080p or 4K picture. Its constant-quality mode is ``rc=vbr`` with ``cq`` (the quality
its VBR aims at, a QP-like scale: 0-51, AV1 0-63; 0 means "automatic") and ``b=0`` (FFmpeg drops the average bitrate
in CQ mode itself, ``nvenc.c`` "CQ mode shall discard avg bitrate/vbv buffer size"; older releases kept the 2 Mb/s as a
target beside ``cq``). So NVENC gets that, ``--crf N`` being ``cq N`` (:data:`DEFAULT_CQ` without one; fractions
pass: ``cq`` is a float), at its default preset (p4) and tune (hq); ``--encoder-opt maxrate=...`` caps the peak.
QSV and AMF are left at FFmpeg's defaults (their rate controls differ and are unverified here); their
``--encoder-opt`` options apply as given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import av

from ..errors import OptionError, OutputError

from ..options import DEFAULT_CQ, DEFAULT_CRF, ENCODER_DEFAULT_CRF  # noqa: F401 - re-exported; the numbers live with the options

RATE_CONTROL_KEYS = ("crf", "qp", "b", "cq", "lossless", "global_quality", "rc")
"""Encoder options that choose the rate control: given any of them, no default CRF (or NVENC CQ) is added."""

NVENC_CODECS = ("h264_nvenc", "hevc_nvenc", "av1_nvenc")
NVENC_CQ_OPTIONS = (("rc", "vbr"), ("b", "0"))
"""What goes with ``cq`` for NVENC's constant-quality mode (a user's own ``rc`` or ``b`` is kept)."""

_PARAMS_KEYS = ("x264-params", "x265-params", "svtav1-params")
_PARAMS_RATE = ("crf", "qp", "bitrate", "lossless", "tbr", "rc")


@lru_cache(maxsize=None)
def _private_options(codec: str) -> dict[str, av.option.Option]:
    try:
        ctx = av.codec.CodecContext.create(codec, "w")
    except (ValueError, av.FFmpegError) as e:
        raise OutputError(f"encoder {codec!r} is not available in this FFmpeg build ({e})") from e
    return {o.name: o for o in ctx.supported_options.private}


_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                 "placebo")
PRESET_TABLE = {"libx264": _X26X_PRESETS, "libx265": _X26X_PRESETS}
"""The presets of the encoders whose ``preset`` option is a free string (FFmpeg lists no choices for it); each opens
(``tests/test_encoder_settings.py``). x264 and x265 also take their index, 0 (ultrafast) to 9 (placebo)."""

ENCODER_DEFAULT_PRESET = {"libx265": "medium", "h264_nvenc": "p4", "hevc_nvenc": "p4", "av1_nvenc": "p4"}
"""The preset an encoder uses when given none, where FFmpeg's option does not say it by name: libx265's is empty (x265
then applies its own default, medium); NVENC's is ``PRESET_P4`` (``nvenc_*.c``; its help says "medium (default)"),
which FFmpeg reports as a number, the preset's place in its own list (6 in FFmpeg 8, where ``bd`` was 6 before)."""


def default_preset(codec: str) -> str | None:
    """The preset encoder ``codec`` uses when given none, by name, or None where this project does not know it
    (pure): libx264's ``medium`` (its option's default), else :data:`ENCODER_DEFAULT_PRESET`. What the summary says
    (:meth:`EncoderSettings.describe`) and what batch's options hash takes as not given
    (``options.encoding_defaults_unset``)."""
    return "medium" if codec == "libx264" else ENCODER_DEFAULT_PRESET.get(codec)


def default_crf(codec: str, options: dict[str, str] | None = None) -> int | None:
    """The CRF :func:`encoder_settings` gives encoder ``codec`` when no ``--crf`` is asked for (pure): NVENC's
    :data:`DEFAULT_CQ` (its ``cq``), else :data:`DEFAULT_CRF`; None for an encoder with neither, or where ``options``
    (``--encoder-opt``) choose a rate control of their own (:func:`user_rate_control`). The one rule the encoder
    set-up and batch's options hash (``options.encoding_defaults_unset``) both follow."""
    if user_rate_control(dict(options or {})):
        return None
    return DEFAULT_CQ[codec] if codec in DEFAULT_CQ else DEFAULT_CRF.get(codec)


def preset_values(codec: str) -> tuple[tuple[str, ...], str] | None:
    """(the ``--preset`` values encoder ``codec`` takes, how to list them in an error), or None when any string is
    passed on (an encoder with a string preset that is not in :data:`PRESET_TABLE`) or it has no preset option.
    From the encoder itself where FFmpeg says (NVENC's named presets, SVT-AV1's number range), else the table.

    Named presets (NVENC's ``p1``-``p7`` and ``slow``/``medium``/``fast``, QSV's, AMF's) by their names only: FFmpeg
    would take a number too, but that is the preset's internal value, not its name (``--preset 6`` for NVENC is p4 in
    FFmpeg 8 and ``bd`` in FFmpeg 7, never p6), so a number is refused (:func:`encoder_settings` says which pN)."""
    opt = _private_options(codec).get("preset")
    if opt is None:
        return None
    if opt.choices:  # named constants: their names, as ffmpeg -h encoder=... lists them
        names = tuple(c.name for c in opt.choices)
        return names, ", ".join(names)
    if opt.type.name in ("INT", "INT64", "UINT64"):
        lo, hi = int(opt.min), int(opt.max)
        return tuple(str(i) for i in range(lo, hi + 1)), f"a whole number from {lo} to {hi}"
    if codec in PRESET_TABLE:
        names = PRESET_TABLE[codec]
        return names + tuple(str(i) for i in range(len(names))), ", ".join(names) + f" (or 0-{len(names) - 1})"
    return None


@lru_cache(maxsize=None)
def _option_names(codec: str) -> frozenset[str]:
    """Every option ``codec``'s encoder takes: FFmpeg's generic codec options (``g``, ``bf``, ``b``, ...) and its own."""
    _private_options(codec)  # an unknown encoder: the OutputError naming it
    so = av.codec.CodecContext.create(codec, "w").supported_options
    return frozenset(o.name for o in (*so.generic, *so.private))


def crf_is_fractional(codec: str) -> bool:
    """Whether ``codec``'s crf option takes fractions (x264 and x265 do; SVT-AV1 and VP9 take integers)."""
    opt = _private_options(codec).get("crf")
    return opt is not None and opt.type.name in ("FLOAT", "DOUBLE")


X26X_CRF_MOST = 51
"""The highest crf x264 and x265 take at any bit depth: their FFmpeg option allows any float, and x264 clamps a
higher one to 51 without a word (the summary then named a crf it did not use) while x265 refuses to open."""


def crf_most(codec: str) -> float | None:
    """The highest ``crf`` encoder ``codec`` takes: :data:`X26X_CRF_MOST` for x264 and x265, else its crf option's
    maximum where that is a bound (63 for SVT-AV1 and VP9, which FFmpeg refused at avcodec_open2 as "Numerical result
    out of range"); None where it has no crf option."""
    opt = _private_options(codec).get("crf")
    if opt is None:
        return None
    if codec.startswith(("libx264", "libx265")):
        return X26X_CRF_MOST
    return float(opt.max) if opt.max < 2**31 else None


def quality_option(codec: str) -> str | None:
    """The option ``--crf`` sets for ``codec``: ``crf``, NVENC's ``cq``, or None (it takes no ``--crf``)."""
    private = _private_options(codec)
    if "crf" in private:
        return "crf"
    if codec in NVENC_CODECS and "cq" in private:
        return "cq"
    return None


def user_rate_control(options: dict[str, str]) -> bool:
    """Whether ``options`` (``--encoder-opt``) already choose a rate control (pure). NVENC's ``tune=lossless`` is
    one (FFmpeg then encodes constant QP 0)."""
    if any(k in options for k in RATE_CONTROL_KEYS):
        return True
    if options.get("tune", "").strip() == "lossless":
        return True
    for key in _PARAMS_KEYS:
        for item in options.get(key, "").split(":"):
            if item.partition("=")[0].strip() in _PARAMS_RATE:
                return True
    return False


_PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def options_as_flags(codec: str, crf: int | float | None, preset: str | None,
                     options: tuple[tuple[str, str], ...]) -> tuple[int | float | None, str | None,
                                                                    tuple[tuple[str, str], ...]]:
    """``(crf, preset, options)`` with a ``crf`` (NVENC: ``cq``) or ``preset`` given in ``options``
    (``--encoder-opt``) moved into the flag that sets the same encoder option: ``--encoder-opt crf=24`` is
    ``--crf 24``, ``preset=slow`` is ``--preset slow`` (:meth:`EncoderSettings.codec_options` gives the encoder the
    same dict either way). Where the flag is given too it wins (:func:`encoder_settings` drops the option's), so the
    option's is dropped. Batch's options hash takes them as one (``options.UpscaleOptions.output_affecting``).

    Only where the encoder is given the same: a crf in plain decimal digits that the flag passes on unrounded
    (``{:g}``: six significant digits); NVENC's ``cq`` only beside a ``rc`` and ``b`` of the options' own (``--crf`` adds
    ``rc=vbr b=0`` where they are missing), and with a crf, a ``rc=vbr`` or ``b=0`` that ``--crf`` adds anyway is
    dropped. An encoder this FFmpeg lacks: as given. Pure but for the encoder's option table."""
    opts = dict(options)  # later keys win, as the encoder is given them
    try:
        key = quality_option(codec)
    except OutputError:
        return crf, preset, tuple(opts.items())
    if key is not None and key in opts:
        value = opts[key]
        if crf is not None:
            del opts[key]
        elif (_PLAIN_NUMBER.fullmatch(value) and (number := float(value)) == float(f"{number:g}")
              and (key != "cq" or ("rc" in opts and "b" in opts))):
            del opts[key]
            crf = int(number) if number.is_integer() else number
    if key == "cq" and crf is not None:
        for k, v in NVENC_CQ_OPTIONS:
            if opts.get(k) == v:
                del opts[k]
    if "preset" in opts:
        value = opts.pop("preset")
        if preset is None:
            preset = value
    return crf, preset, tuple(opts.items())


@dataclass(frozen=True)
class EncoderSettings:
    """What the encoder was given: codec, CRF (and whether it is the project's default), preset, other options.
    ``quality_key``: the option the CRF is given as, ``crf``, or ``cq`` for NVENC (with ``rc=vbr b=0``)."""

    codec: str
    crf: int | float | None
    crf_is_default: bool
    preset: str | None
    options: tuple[tuple[str, str], ...]
    quality_key: str = "crf"

    def codec_options(self) -> dict[str, str]:
        """The options for FFmpeg's encoder (``crf`` or NVENC's ``cq`` and ``preset`` included)."""
        out = dict(self.options)
        if self.crf is not None:
            out[self.quality_key] = f"{self.crf:g}" if isinstance(self.crf, float) else str(self.crf)
            if self.quality_key == "cq":
                for key, value in NVENC_CQ_OPTIONS:
                    out.setdefault(key, value)
        if self.preset is not None:
            out["preset"] = self.preset
        return out

    def describe(self) -> str:
        """One phrase for the summary: ``libx264 crf 16 (default), preset medium (encoder default)``; NVENC's
        ``h264_nvenc cq 16 (default), rc vbr, preset p4 (encoder default)``."""
        parts = [self.codec]
        if self.crf is not None:
            parts.append(f"{self.quality_key} {self.crf:g}" + (" (default)" if self.crf_is_default else ""))
            if self.quality_key == "cq":
                parts[-1] += f", rc {dict(self.options).get('rc', 'vbr')}"
        elif not user_rate_control(dict(self.options)) and "crf" in _private_options(self.codec):
            parts.append("encoder's default rate control")
        text = " ".join(parts)
        opt = _private_options(self.codec).get("preset")
        if self.preset is not None:
            text += f", preset {self.preset}"
        elif opt is not None:  # one wording for every encoder: "preset X (encoder default)", X where it is known
            default = str(opt.default).strip()
            # FFmpeg's "not set" (the library's own default applies), or a named preset's number (not its name)
            if not default or default in ("-2", "-1") or opt.choices:
                default = default_preset(self.codec) or ""
            text += f", preset {default} (encoder default)" if default else ", preset (encoder default)"
        shown = ("crf", "preset", "rc") if self.quality_key == "cq" and self.crf is not None else ("crf", "preset")
        extra = [f"{k}={v}" for k, v in self.options if k not in shown]
        if extra:
            text += ", " + " ".join(extra)
        return text


def encoder_settings(codec: str, *, crf: int | float | None = None, preset: str | None = None,
                     options: dict[str, str] | None = None) -> EncoderSettings:
    """The settings to give ``codec``: ``crf`` as asked, else the project's default where the encoder takes one
    and the user chose no rate control; for NVENC the same as ``cq`` (:data:`DEFAULT_CQ`). Raises
    :class:`OptionError` (exit 2) for a crf, preset or ``options`` key the encoder has no option for, a preset it
    does not have (:func:`preset_values`), for a fractional crf where it takes integers or one above its range
    (:func:`crf_most`), and for an NVENC crf outside
    its cq's range or 0 (which NVENC reads as "automatic", not lossless)."""
    private = _private_options(codec)
    opts = dict(options or {})
    unknown = [k for k in opts if k not in _option_names(codec)]
    if unknown:  # FFmpeg would leave them unused without a word
        raise OptionError("encoder_opts", f"options the {codec} encoder has (ffmpeg -h encoder={codec} lists them)",
                          ",".join(unknown))
    key = quality_option(codec)
    if crf is not None:
        if key is None:
            raise OptionError("crf", f"no --crf for encoder {codec} (it has no crf option)", crf)
        if key == "cq":
            top = int(private["cq"].max)
            if not 0 < float(crf) <= top:
                raise OptionError("crf", f"above 0 and at most {top} for encoder {codec} (its constant-quality cq, "
                                         "where 0 means automatic, not lossless: --encoder-opt tune=lossless is)", crf)
        elif float(crf) != int(float(crf)) and not crf_is_fractional(codec):
            raise OptionError("crf", f"a whole number for encoder {codec} (its crf is an integer)", crf)
        elif (top := crf_most(codec)) is not None and float(crf) > top:
            raise OptionError("crf", f"0 to {top:g} for encoder {codec}", crf)
        if float(crf) == int(float(crf)):
            crf = int(float(crf))
    if preset is not None and "preset" not in private:
        profile = private.get("profile")
        hint = ("; its profile is --encoder-opt profile=" + "|".join(c.name for c in profile.choices)
                if profile is not None and profile.choices else "")
        raise OptionError("preset", f"no --preset for encoder {codec} (it has no preset option{hint})", preset)
    values = None if preset is None else preset_values(codec)
    if values is not None:
        preset = str(preset).strip()
        if preset not in values[0]:  # FFmpeg would refuse it at avcodec_open2, or take a number for another preset
            if private["preset"].choices and preset.lstrip("-").isdigit():
                hint = f"; did you mean p{preset}?" if f"p{preset}" in values[0] else ""
                raise OptionError("preset", f"a {codec} preset by name: {values[1]} (a number is FFmpeg's internal "
                                            f"value of a preset, which differs between FFmpeg versions{hint})", preset)
            raise OptionError("preset", f"a {codec} preset: {values[1]}", preset)
    is_default = False
    if crf is None and key is not None and (default := default_crf(codec, opts)) is not None:
        crf, is_default = default, True
    key = key or "crf"
    return EncoderSettings(codec=codec, crf=crf, crf_is_default=is_default, preset=preset,
                           options=tuple((k, v) for k, v in opts.items() if k not in (key, "preset") or
                                         (k == key and crf is None) or (k == "preset" and preset is None)),
                           quality_key=key)


def _cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


X264_AVX512 = _cpu_has_avx512()
"""Whether this CPU has AVX-512 (``avx512f`` in /proc/cpuinfo), where libx264 enables its AVX-512 code."""

X264_CODECS = ("libx264", "libx264rgb")


def deterministic_options(codec: str, options: dict[str, str]) -> dict[str, str]:
    """``options`` for encoder ``codec`` (a new dict), with ``asm=avx2`` added to libx264's ``x264-params`` on a
    CPU with AVX-512 unless the user chose an ``asm``. There libx264's AVX-512 code, with mb-tree (its default),
    gave other bits and other decoded pixels for the same pictures: 8 of 10 encodes of one 320x240 10-frame clip
    in one process differed, and 1 of 3 fresh processes (x264 core 165; ``asm=avx2`` or ``no-mbtree``: none; one
    thread: as many), which broke batch's "deterministic to the byte" (``docs/batch.md``) for its default encoder.
    AVX2 is the same algorithm (``tests/test_x264_determinism.py``)."""
    out = dict(options)
    if codec in X264_CODECS and X264_AVX512:
        params = out.get("x264-params", "")
        if not any(p.partition("=")[0].strip() == "asm" for p in params.split(":")):
            out["x264-params"] = ":".join(filter(None, [params, "asm=avx2"]))
    return out
