"""The frame sizes each encoder takes, as this FFmpeg (PyAV's) enforces them: one table, asked before anything opens.

An output size outside them was refused only when the encoder opened (``avcodec_open2 ... returned 22``, e.g.
libx265 on 8x8 frames), or, for libwebp, at the first frame sent, after the model had run. Each limit here was
measured by opening the encoder and encoding two frames at the sizes on either side of it (PyAV 19, libavcodec 63,
x264 core 165, x265 4.3, libvpx, SVT-AV1); what the encoder said at the size refused is in each entry's comment.

``frame_size_refusal`` answers for a size, pure but for FFmpeg's encoder names; ``writer.check_video`` raises it (before
the model where the model's scale is known, ``output_plan.check_plan``; else before the output is opened).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..frames.pixel_formats import size_multiple
from .encoder_formats import encoder_name

__all__ = ["ENCODER_FRAME_LIMITS", "FrameLimits", "X265_BAD_WIDTHS", "frame_size_refusal", "picture_fits"]

X265_BAD_WIDTHS = range(33, 64)
"""Frame widths libx265 (PyAV's x265 4.3) is not given: it crashed the process (heap corruption, SIGSEGV/SIGABRT,
content-dependent) on frames 34-48 px wide, more than half of and less than one 64-px CTU (never on 32 or less, nor on
64 and more, in the same trials). Refused before any file is opened."""


@dataclass(frozen=True)
class FrameLimits:
    """The frame sizes one encoder takes."""

    least: tuple[int, int] = (1, 1)
    """The smallest width and height it opens on."""
    most: tuple[int, int] | None = None
    """The largest width and height; None: only FFmpeg's own picture limit (:func:`picture_fits`)."""
    chroma_multiple: bool = False
    """The size must be a multiple of the pixel format's chroma subsampling (4:2:0: even width and height)."""
    chroma_multiple_w: bool = False
    """The width must be (the height need not: HuffYUV, FFV-HuffYUV)."""
    least_chroma_w: int = 1
    """The chroma planes' width must be at least this (FFV1: 2; a 3-px 4:2:0 frame has "0 slices")."""
    bad_widths: range | None = None
    """Widths it must not be given (:data:`X265_BAD_WIDTHS`)."""
    no_multiple_of: int | None = None
    """A width or height it refuses when a multiple of this (MPEG-1/2: 4096, unless ``-strict -1``)."""
    sizes: tuple[tuple[int, int], ...] | None = None
    """The only sizes it encodes (H.263)."""
    advice: str = "use another --codec, or another --scale or --size"
    """What to do, said after a refusal."""


_SMALLER = "use another --codec, or a smaller --scale or --size"
_LARGER = "use --codec libx264, or a larger --scale or --size"

ENCODER_FRAME_LIMITS: dict[str, FrameLimits] = {
    # "[libx264] invalid width x height (16385x64)"; odd sizes of 4:2:0 refused
    "libx264": FrameLimits(most=(16384, 16384), chroma_multiple=True,
                           advice="use --codec libx265, or a smaller --scale or --size"),
    # "[libx265] Image size is too small (8x8)"; "Picture width must be an integer multiple of the specified chroma
    # subsampling"; no largest size but FFmpeg's
    "libx265": FrameLimits(least=(16, 16), chroma_multiple=True, bad_widths=X265_BAD_WIDTHS, advice=_LARGER),
    # "[libvpx] ... g_w out of range [1..16383]"
    "libvpx": FrameLimits(most=(16383, 16383), advice="use --codec libvpx-vp9, or a smaller --scale or --size"),
    # "[libvpx-vp9] ... g_w out of range [1..65536]"
    "libvpx-vp9": FrameLimits(most=(65536, 65536)),
    # "[libsvtav1] Error setting encoder parameters: bad parameter" at 16386 wide or 8706 high (SVT-AV1's documented
    # 16384x8704; it opened on a few far larger sizes, 81920 wide, which these limits refuse too)
    "libsvtav1": FrameLimits(most=(16384, 8704), chroma_multiple=True,
                             advice="use --codec libx265, or a smaller --scale or --size"),
    # "[mpeg1video] MPEG-1 video does not support resolutions above 4095x4095"; "Width or Height are not allowed to be
    # multiples of 4096" (MPEG-2 too)
    "mpeg1video": FrameLimits(most=(4095, 4095), no_multiple_of=4096,
                              advice="use --codec mpeg2video, or a smaller --scale or --size"),
    # "[mpeg2video] MPEG-2 video does not support resolutions above 16383x16383"
    "mpeg2video": FrameLimits(most=(16383, 16383), no_multiple_of=4096),
    # "[mpeg4] dimensions too large for MPEG-4" at 8192
    "mpeg4": FrameLimits(most=(8191, 8191), chroma_multiple=True,
                         advice="use --codec libx264, or a smaller --scale or --size"),
    # "[mjpeg] JPEG does not support resolutions above 65500x65500"
    "mjpeg": FrameLimits(most=(65500, 65500), advice=_SMALLER),
    # "[gif] GIF does not support resolutions above 65535x65535"
    "gif": FrameLimits(most=(65535, 65535), advice=_SMALLER),
    # "[jpegls] Dimensions exceeding 65535x65535"
    "jpegls": FrameLimits(most=(65535, 65535), advice=_SMALLER),
    # "[libwebp] Picture size is too large. Max is 16383x16383." (at the first frame sent, not at open)
    "libwebp": FrameLimits(most=(16383, 16383), advice="use a .png output, or a smaller --scale or --size"),
    "libwebp_anim": FrameLimits(most=(16383, 16383),
                                advice="use an .apng or .mkv output, or a smaller --scale or --size"),
    # "Unsupported number 0 of slices requested" for a 4:2:0 frame 3 px wide (chroma 1 px), a 4:4:4 one 1 px wide
    "ffv1": FrameLimits(least_chroma_w=2),
    # odd widths of 4:2:2 / 4:2:0 refused, odd heights taken
    "huffyuv": FrameLimits(chroma_multiple_w=True),
    "ffvhuff": FrameLimits(chroma_multiple_w=True),
    # odd widths and heights of 4:2:0, odd widths of 4:2:2 refused
    "utvideo": FrameLimits(chroma_multiple=True),
    # the writer's rule before these limits (ProRes opened on odd sizes too)
    "prores_ks": FrameLimits(chroma_multiple=True),
    # "Valid sizes are 128x96, 176x144, 352x288, 704x576, and 1408x1152. Try H.263+."
    "h263": FrameLimits(sizes=((128, 96), (176, 144), (352, 288), (704, 576), (1408, 1152)),
                        advice="use --codec h263p or libx264"),
    # not measured here (no NVIDIA GPU): the writer's rule before these limits
    "h264_nvenc": FrameLimits(chroma_multiple=True),
    "hevc_nvenc": FrameLimits(chroma_multiple=True),
    "av1_nvenc": FrameLimits(chroma_multiple=True),
}
"""Each encoder's :class:`FrameLimits`, by FFmpeg's encoder name (``vp8`` is ``libvpx``, ``h264`` ``libx264``).
png, apng, tiff, bmp, qoi, jpeg2000, prores_ks, libx265's and FFV1's largest size: FFmpeg's own picture limit
only (:func:`picture_fits`). DNxHD's sizes depend on its profile (:func:`_dnxhd_refusal`)."""

DNXHD_SIZES = ((1920, 1080), (1440, 1080), (1280, 720), (960, 720))
"""The frame sizes FFmpeg's DNxHD profiles (``profile=dnxhd``, the default) encode, each at its own bit rates."""
DNXHR_LEAST = (256, 120)
"""DNxHR (``profile=dnxhr_lb`` ... ``dnxhr_444``): any size from 256x120 ("Input dimensions too small, input must be
at least 256x120")."""


def picture_fits(width: int, height: int) -> bool:
    """Whether FFmpeg opens any encoder on a ``width`` x ``height`` picture (``av_image_check_size2``, in
    ``avcodec_open2``): 8 x (width + 128) x (height + 128) below INT_MAX, (width + 128) x (height + 128) under 2^28.
    16256x16256 is refused ("[IMGUTILS] Picture size 16256x16256 is invalid"), 131072x1900 taken, 131072x1920 refused;
    2080767x1 taken, 2080768x1 refused."""
    return 8 * (width + 128) * (height + 128) < 2**31 - 1


def frame_size_refusal(codec: str, pix_fmt: str, size: tuple[int, int], options: dict[str, str] | None = None
                       ) -> str | None:
    """Why encoder ``codec`` cannot encode ``size`` frames of ``pix_fmt`` with ``options`` (its codec options: DNxHD's
    ``profile``), in words that follow the output's name (``"libx265 cannot encode frames smaller than 16x16, got
    8x8; use ..."``); None when it can. Pure but for FFmpeg's encoder names."""
    w, h = size
    name = encoder_name(codec)
    if name == "dnxhd":
        return _dnxhd_refusal(codec, w, h, options or {})
    lim = ENCODER_FRAME_LIMITS.get(name, FrameLimits())
    subsampled = lim.chroma_multiple or lim.chroma_multiple_w or lim.least_chroma_w > 1
    mx, my = _chroma_multiple(pix_fmt) if subsampled else (1, 1)
    if (lim.chroma_multiple and (w % mx or h % my)) or (lim.chroma_multiple_w and w % mx):
        multiple = f"{mx}x{my}" if lim.chroma_multiple else f"{mx} wide"
        return f"{codec} needs a frame size that is a multiple of {multiple} for {pix_fmt}, got {w}x{h}"
    if lim.bad_widths is not None and w in lim.bad_widths:
        return (f"{codec} cannot be given frames {lim.bad_widths.start} to {lim.bad_widths.stop - 1} px wide (x265 4.3 "
                f"corrupts its memory on some, e.g. 40 or 48 wide), got {w}x{h}; {lim.advice}")
    if lim.sizes is not None and (w, h) not in lim.sizes:
        known = ", ".join(f"{a}x{b}" for a, b in lim.sizes)
        return f"{codec} encodes only frames of {known}, got {w}x{h}; {lim.advice}"
    if w < lim.least[0] or h < lim.least[1]:
        return f"{codec} cannot encode frames smaller than {lim.least[0]}x{lim.least[1]}, got {w}x{h}; {lim.advice}"
    if lim.least_chroma_w > 1 and w // mx < lim.least_chroma_w:  # the chroma planes' width
        least = lim.least_chroma_w * mx
        return (f"{codec} cannot encode {pix_fmt} frames narrower than {least} px, got {w}x{h}; "
                "use another --codec, or a larger --scale or --size")
    if lim.most is not None and (w > lim.most[0] or h > lim.most[1]):
        return f"{codec} encodes frames of at most {lim.most[0]}x{lim.most[1]}, got {w}x{h}; {lim.advice}"
    if lim.no_multiple_of and (w % lim.no_multiple_of == 0 or h % lim.no_multiple_of == 0):
        return (f"{codec} cannot encode frames whose width or height is a multiple of {lim.no_multiple_of}, got "
                f"{w}x{h}; {lim.advice}")
    return _picture_refusal(w, h)


def _chroma_multiple(pix_fmt: str) -> tuple[int, int]:
    """The multiple of ``pix_fmt``'s chroma subsampling (4:2:0: 2x2); 1x1 for a format the pipeline has no
    descriptor for (GIF's ``rgb8``), which has no subsampled planes."""
    try:
        return size_multiple(pix_fmt)
    except ValueError:
        return 1, 1


def _dnxhd_refusal(codec: str, w: int, h: int, options: dict[str, str]) -> str | None:
    """DNxHD (``profile=dnxhd``, the default) encodes :data:`DNXHD_SIZES` only; DNxHR any size from 256x120."""
    profile = options.get("profile", "dnxhd")
    if profile.startswith("dnxhr"):
        if w < DNXHR_LEAST[0] or h < DNXHR_LEAST[1]:
            return (f"{codec} ({profile}) cannot encode frames smaller than {DNXHR_LEAST[0]}x{DNXHR_LEAST[1]}, got "
                    f"{w}x{h}; use --codec prores_ks, or a larger --scale or --size")
    elif (w, h) not in DNXHD_SIZES:
        known = ", ".join(f"{a}x{b}" for a, b in DNXHD_SIZES)
        return (f"{codec} (DNxHD) encodes only frames of {known}, got {w}x{h}; use --encoder-opt profile=dnxhr_hq "
                "(DNxHR: any size from 256x120), or --codec prores_ks")
    return _picture_refusal(w, h)


def _picture_refusal(w: int, h: int) -> str | None:
    """Why FFmpeg opens no encoder on ``w`` x ``h`` pictures (:func:`picture_fits`); None when it does."""
    if picture_fits(w, h):
        return None
    return (f"FFmpeg opens no encoder on pictures this large ((width + 128) x (height + 128) must stay under 2^28), "
            f"got {w}x{h}; use a smaller --scale or --size")
