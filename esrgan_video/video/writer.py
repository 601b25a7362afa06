"""Write the upscaled video: encode planes, copy every other stream, keep timestamps, rename when complete.

    with open_input("in.mkv") as inp, OutputVideo("out.mkv", template=inp, size=(256, 192),
                                                  color=spec) as out:
        for frame in inp.frames():
            out.write(planes_for(frame), frame.pts)      # presentation order, input time base

The file is written beside the target under a hidden temporary name that keeps the extension
(``.out.<pid>.partial.mkv``, see ``video.partials``) and renamed over the target by ``close()``
(``os.replace``, atomic on one file system). ``abort()`` — also what an exception inside ``with`` does —
removes it unless ``keep_partial``; a later writer of the same target removes temporary files whose
process is gone (killed with SIGKILL, or kept with ``keep_partial``). Audio, subtitle, attachment and
data streams are copied packet for packet (no re-encode) from a second demuxer on the input,
interleaved with the encoded video by time, so memory stays bounded. Timestamps: frames keep their
input pts in the input stream's time base; the container may store them coarser (Matroska: 1 ms),
which is then the only rounding.
"""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from ..frames.color import ColorSpec
from ..errors import OutputError
from ..frames.colorspace import Matrix, Range
from ..frames.sizing import sar_storable
from ..frames.pixel_formats import pixel_format, plane_layouts, size_multiple
from .encoder_settings import encoder_settings
from .encoder_formats import choose_pix_fmt, encoder_pix_fmts
from .partials import partial_path, remove_stale_partials
from .reader import InputVideo, clean_metadata

__all__ = ["OutputVideo", "container_suggestion", "partial_path"]

# Encoders whose frame size must be a multiple of the chroma subsampling.
_STRICT_SIZE = ("libx264", "libx265", "libsvtav1", "h264_nvenc", "hevc_nvenc", "av1_nvenc", "prores_ks", "mpeg4")

# Containers to suggest when a stream does not fit, in order of preference: (extension, FFmpeg muxer).
_SUGGEST = ((".mkv", "matroska"), (".mp4", "mp4"), (".mov", "mov"))


def container_suggestion(codecs: Sequence[str]) -> str | None:
    """The first of .mkv/.mp4/.mov whose muxer accepts every codec in ``codecs`` (codec names), or None."""
    for ext, muxer in _SUGGEST:
        try:
            with av.open(io.BytesIO(), "w", format=muxer) as probe:
                for name in codecs:
                    probe.add_mux_stream(name)
        except (ValueError, av.FFmpegError):
            continue
        return ext
    return None


def _rate(q) -> Fraction | None:
    return Fraction(q) if q else None


class OutputVideo:
    """An output file being written. Use as a context manager, or call ``close()`` / ``abort()``.

    ``template``: the ``InputVideo`` whose timestamps, rate, metadata, chapters, rotation, SAR, HDR
    metadata and other streams are carried over. ``size`` (W, H) and ``pix_fmt`` describe the frames
    given to ``write``; ``color`` is what the planes are encoded in (tags written on frames and encoder).
    ``start``/``end`` (frame index or seconds, as for ``InputVideo.frames``) trim the copied streams to the
    same range; ``shift_timestamps`` moves every stream by the same amount so the output starts at 0.
    ``notices`` collects one-line warnings (streams skipped, HDR metadata not writable by the encoder).
    ``sar``: the sample aspect ratio to write (``frames.sizing.plan_size`` chooses it); None: the template's.
    """

    def __init__(
        self,
        dst: str | os.PathLike,
        *,
        template: InputVideo | None = None,
        codec: str = "libx264",
        pix_fmt: str | None = None,
        crf: float | None = None,
        preset: str | None = None,
        options: dict[str, str] | None = None,
        size: tuple[int, int] | None = None,
        color: ColorSpec | None = None,
        copy_streams: bool = True,
        start=None,
        end=None,
        shift_timestamps: bool = True,
        overwrite: bool = False,
        keep_partial: bool = False,
        time_base: Fraction | None = None,
        rate: Fraction | None = None,
        sar: Fraction | None = None,
    ):
        self.dst = Path(dst)
        self.template = template
        self.keep_partial = keep_partial
        self.overwrite = overwrite
        self.notices: list[str] = []
        self.frames_written = 0
        self.copied_packets = 0
        """Packets of the other streams handed to the muxer so far (they follow the video's time)."""
        self._closed = False
        self._flushed = False
        self._last_pts: int | None = None
        self._check_paths()
        info = template.info if template is not None else None
        if size is None:
            if info is None:
                raise ValueError("OutputVideo: size is required without a template")
            size = (info.width, info.height)
        self.size = (int(size[0]), int(size[1]))
        if pix_fmt is None:
            if info is None:
                raise ValueError("OutputVideo: pix_fmt is required without a template")
            pix_fmt, notice = choose_pix_fmt(codec, info.pix_fmt)
            if notice:
                self.notices.append(notice)
        self.pix_fmt = pix_fmt
        self.codec = codec
        self.time_base = Fraction(time_base) if time_base is not None else (
            info.time_base if info is not None else None)
        if self.time_base is None:
            raise ValueError("OutputVideo: time_base is required without a template")
        self.rate = Fraction(rate) if rate is not None else (info.frame_rate if info is not None else None)
        self.sar = Fraction(sar) if sar is not None else (info.sample_aspect_ratio if info is not None else None)
        self.color = color if color is not None else (info.color if info is not None else ColorSpec())
        self.encoder_settings = encoder_settings(codec, crf=crf, preset=preset, options=dict(options or {}))
        """What the encoder is given (the project's default CRF included); ``describe()`` for a summary."""
        self._check_encoder(codec)
        self._layouts = plane_layouts(pix_fmt, *self.size)
        self._tags = self._color_tags(self.color)

        # Trim window (media seconds) and the common shift of every stream.
        if template is not None:
            self.t0, self.t1 = template.resolve_range(start, end)
            base = info.start_time
        else:
            self.t0 = Fraction(start) if start is not None else None
            self.t1 = Fraction(end) if end is not None else None
            base = Fraction(0)
        self.base = base
        self.shift = (base + (self.t0 or 0)) if shift_timestamps else Fraction(0)

        remove_stale_partials(self.dst)  # left by an earlier writer of this target that was killed
        self.partial = partial_path(self.dst)
        try:
            self._out = av.open(str(self.partial), "w")
        except (ValueError, av.FFmpegError, OSError) as e:
            self._remove_partial()
            raise OutputError(f"{self.dst}: cannot write this file ({e}); "
                              "use a container extension such as .mkv or .mp4") from e
        self._in = None
        self._copy_map: dict[int, av.stream.Stream] = {}
        self._gap_fill: dict[int, bool] = {}
        self._pending = None
        self._demux = None
        try:
            self._setup_video(codec, info)
            if template is not None:
                self._setup_container(info)
                if copy_streams:
                    self._setup_copies(template)
            self._out.start_encoding()
        except OutputError:
            self.abort()
            raise
        except (ValueError, av.FFmpegError) as e:
            self.abort()
            raise OutputError(f"{self.dst}: cannot set up the {codec} encoder ({e})") from e

    # -- setup ------------------------------------------------------------------------------------

    def _check_paths(self) -> None:
        dst = self.dst
        if not dst.parent.is_dir():
            raise OutputError(f"{dst}: the directory {dst.parent} does not exist")
        if dst.is_dir():
            raise OutputError(f"{dst}: is a directory")
        if self.template is not None:
            src = self.template.path
            same = dst.exists() and src.exists() and os.path.samefile(src, dst)
            if same or dst.resolve() == src.resolve():
                raise OutputError(f"{dst}: the output is the input file; choose another output name")
        if dst.exists() and not self.overwrite:
            raise OutputError(f"{dst}: already exists (use --overwrite / -y to replace it)")

    def _check_encoder(self, codec: str) -> None:
        accepted = encoder_pix_fmts(codec)
        if accepted and self.pix_fmt not in accepted:
            raise OutputError(f"encoder {codec} cannot write pixel format {self.pix_fmt}; "
                              f"it accepts: {', '.join(accepted)}")
        mx, my = size_multiple(self.pix_fmt)
        w, h = self.size
        if codec in _STRICT_SIZE and (w % mx or h % my):
            raise OutputError(f"{self.dst}: {codec} needs a frame size that is a multiple of {mx}x{my} for "
                              f"{self.pix_fmt}, got {w}x{h}")

    def _setup_video(self, codec, info) -> None:
        options = self.encoder_settings.codec_options()
        if info is not None and info.hdr is not None:
            params = {"libx265": ("x265-params", info.hdr.x265_params()),
                      "libsvtav1": ("svtav1-params", info.hdr.svtav1_params())}.get(codec)
            if params and params[1]:
                key, extra = params
                options[key] = ":".join(filter(None, [options.get(key), *extra]))
            else:
                self.notices.append(f"{self.dst}: {codec} cannot carry the input's HDR mastering-display / "
                                    "content-light metadata (libx265 and libsvtav1 can); it is not written")
        try:
            vs = self._out.add_stream(codec, rate=self.rate, options=options)
        except ValueError as e:
            raise OutputError(self._container_refuses(codec, "video")) from e
        vs.width, vs.height = self.size
        vs.pix_fmt = self.pix_fmt
        vs.time_base = self.time_base
        ctx = vs.codec_context
        ctx.time_base = self.time_base
        vs.thread_type = "AUTO"
        ctx.thread_count = 0
        for name, value in self._tags.items():
            setattr(ctx, name if name != "chroma_location" else "chroma_sample_location", value)
        if self.sar:
            ctx.sample_aspect_ratio = self.sar
            if self.sar != 1 and not sar_storable(codec, self._out.format.name):
                self.notices.append(f"{self.dst}: the sample aspect ratio {self.sar} cannot be "
                                    f"written for {codec} in Matroska with PyAV (it can in .mov/.mp4)")
        if info is not None:
            if info.display_matrix:
                vs.set_display_matrix(list(info.display_matrix))
            vs.metadata.update(info.stream_metadata)
        self._video = vs

    def _color_tags(self, spec: ColorSpec) -> dict[str, int]:
        """FFmpeg's numbers for the encoder's and every frame's colour tags."""
        fmt = pixel_format(self.pix_fmt)
        if fmt.family == "yuv" and spec.matrix == Matrix.RGB:
            raise ValueError(f"OutputVideo: colour matrix 0 (GBR/identity) cannot describe {self.pix_fmt} output; "
                             "pass a ColorSpec resolved for a YUV format (e.g. BT.709 = 1)")
        if fmt.family == "rgb":
            return {"colorspace": Matrix.RGB.ffmpeg, "color_range": Range.FULL.ffmpeg,
                    "color_primaries": spec.primaries.ffmpeg, "color_trc": spec.transfer.ffmpeg}
        siting = spec.chroma_siting
        return {
            "colorspace": spec.matrix.ffmpeg,
            "color_range": 0 if spec.range is None else spec.range.ffmpeg,
            "color_primaries": spec.primaries.ffmpeg,
            "color_trc": spec.transfer.ffmpeg,
            "chroma_location": 0 if siting is None else siting.ffmpeg,
        }

    def _setup_container(self, info) -> None:
        self._out.metadata.update(info.metadata)
        chapters = []
        for ch in info.chapters:
            tb = Fraction(ch["time_base"])
            s, e = ch["start"] * tb - self.base, ch["end"] * tb - self.base
            if self.t1 is not None and s >= self.t1 or self.t0 is not None and e <= self.t0:
                continue
            if self.t1 is not None:
                e = min(e, self.t1)
            s -= self.shift - self.base
            e -= self.shift - self.base
            chapters.append({"id": ch["id"], "start": max(0, round(s / tb)), "end": round(e / tb),
                             "time_base": ch["time_base"], "metadata": dict(ch.get("metadata") or {})})
        if chapters:
            self._out.set_chapters(chapters)

    def _setup_copies(self, template: InputVideo) -> None:
        self._in = template.open_container()
        vindex = template.info.stream_index
        copied = []
        for st in self._in.streams:
            if st.index == vindex:
                continue
            if st.type == "video" and not (st.disposition & av.stream.Disposition.attached_pic):
                self.notices.append(f"{template.path}: video stream #{st.index} is not copied "
                                    "(only the first video stream is upscaled)")
                continue
            cname = st.codec_context.name if st.codec_context is not None else st.type
            try:
                out_st = self._out.add_stream_from_template(st)
            except (ValueError, av.FFmpegError) as e:
                if st.type == "data":
                    self.notices.append(f"{template.path}: data stream #{st.index} ({cname}) cannot go into "
                                        f"{self.dst.suffix or 'this'} files and is not copied")
                    continue
                raise OutputError(self._container_refuses(cname, st.type, st.index)) from e
            out_st.metadata.update(clean_metadata(dict(st.metadata)))
            try:
                out_st.disposition = st.disposition
            except (AttributeError, ValueError):
                pass
            self._copy_map[st.index] = out_st
            self._gap_fill[st.index] = cname == "mov_text" and self._out.format.name in ("mp4", "mov", "ipod")
            copied.append(st)
        if copied:
            self._demux = self._in.demux(*copied)
        else:
            self._in.close()
            self._in = None

    def _container_refuses(self, codec: str, kind: str, index: int | None = None) -> str:
        what = f"{kind} stream #{index} ({codec})" if index is not None else f"{codec} {kind}"
        codecs = [codec, self.codec] if index is not None else [codec]
        ext = container_suggestion(codecs)
        hint = f"; use {ext} instead" if ext and ext != self.dst.suffix.lower() else ""
        return f"{self.dst}: the {self.dst.suffix or 'chosen'} container cannot hold the {what}{hint}"

    # -- writing ----------------------------------------------------------------------------------

    def __enter__(self) -> OutputVideo:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, planes: Sequence[np.ndarray], pts: int) -> None:
        """Encode one frame given as planes (shapes of ``formats.plane_layouts(pix_fmt, W, H)``; integer
        arrays, cast to the format's sample type) at ``pts`` in the input stream's time base.

        Frames must come in presentation order (strictly increasing ``pts``).
        """
        if self._closed or self._flushed:
            raise ValueError(f"{self.dst}: write() after flush/close/abort")
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"OutputVideo.write: pts must increase (presentation order), got {pts} after "
                             f"{self._last_pts}")
        if len(planes) != len(self._layouts):
            raise ValueError(f"OutputVideo.write: expected {len(self._layouts)} planes for {self.pix_fmt}, "
                             f"got {len(planes)}")
        frame = av.VideoFrame(self.size[0], self.size[1], self.pix_fmt)
        for i, (plane, arr, lay) in enumerate(zip(frame.planes, planes, self._layouts)):
            a = np.asarray(arr)
            if a.shape != lay.shape:
                raise ValueError(f"OutputVideo.write: plane {i} of {self.pix_fmt} {self.size[0]}x{self.size[1]} "
                                 f"must have shape {lay.shape}, got {a.shape}")
            a = np.ascontiguousarray(a, dtype=lay.dtype)
            ls = plane.line_size
            rows = lay.shape[0]
            buf = np.frombuffer(plane, np.uint8, count=ls * (rows - 1) + lay.row_bytes)
            np.lib.stride_tricks.as_strided(buf, shape=(rows, lay.row_bytes), strides=(ls, 1))[...] = \
                a.view(np.uint8).reshape(rows, lay.row_bytes)
        frame.pts = pts - round(self.shift / self.time_base)
        frame.time_base = self.time_base
        for name, value in self._tags.items():
            setattr(frame, name, value)
        self._last_pts = pts
        self._pump(pts * self.time_base - self.base)
        try:
            packets = self._video.encode(frame)
            self._out.mux(packets)
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: encoding or writing failed at frame {self.frames_written}: {e}") from e
        self.frames_written += 1

    def _pump(self, until: Fraction | None) -> None:
        """Mux copied packets whose time (media seconds) is at or before ``until`` (all when None)."""
        if self._demux is None:
            return
        while True:
            pkt = self._pending
            if pkt is None:
                try:
                    pkt = next(self._demux)
                except StopIteration:
                    self._demux = None
                    return
                except av.FFmpegError as e:  # damaged tail of the input: what was copied stands
                    self.notices.append(f"{self.template.path}: stopped copying other streams at a damaged "
                                        f"part ({e})")
                    self._demux = None
                    return
                if pkt.size == 0 and pkt.pts is None and pkt.dts is None:
                    continue  # demuxer flush packet
            ts = pkt.dts if pkt.dts is not None else pkt.pts
            tb = Fraction(pkt.time_base)
            if until is not None and ts is not None and ts * tb - self.base > until:
                self._pending = pkt
                return
            self._pending = None
            self._copy(pkt, tb)

    def _copy(self, pkt: av.Packet, tb: Fraction) -> None:
        if pkt.size == 2 and self._gap_fill.get(pkt.stream_index) and bytes(pkt) == b"\x00\x00":
            return  # an empty mov_text sample between cues: the MP4/MOV muxer writes its own
        start = pkt.pts if pkt.pts is not None else pkt.dts
        if start is not None:
            t = start * tb - self.base
            dur = (pkt.duration or 0) * tb
            if self.t1 is not None and t >= self.t1:
                return
            if self.t0 is not None and (t + dur <= self.t0 if dur else t < self.t0):
                return
            if self.t0 is not None and t < self.t0 and pkt.stream.type in ("subtitle", "data"):
                # A cue that started before the cut shows from the cut for the rest of its time. (Audio keeps
                # its own timing: a slightly negative first timestamp, which the muxer offsets for all streams.)
                cut = round((self.t0 + self.base) / tb)
                pkt.duration = pkt.duration - (cut - start)
                if pkt.dts is not None:
                    pkt.dts += cut - start
                pkt.pts = cut
        out_st = self._copy_map[pkt.stream_index]
        shift = round(self.shift / tb)
        if pkt.pts is not None:
            pkt.pts -= shift
        if pkt.dts is not None:
            pkt.dts -= shift
        pkt.stream = out_st
        try:
            self._out.mux(pkt)
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: copying stream #{out_st.index} failed: {e}") from e
        self.copied_packets += 1

    def flush(self) -> None:
        """Drain the encoder and copy the rest of the other streams (``close`` does it if not done)."""
        if self._flushed or self._closed:
            return
        try:
            self._out.mux(self._video.encode(None))
            self._pump(None)
        except av.FFmpegError as e:
            raise OutputError(f"{self.dst}: finishing the encode failed: {e}") from e
        self._flushed = True

    def close(self) -> Path:
        """Flush, finish the file and rename it over the target; returns the target path."""
        if self._closed:
            return self.dst
        try:
            self.flush()
            self._out.close()
            self._close_input()
            if self.dst.exists() and not self.overwrite:
                raise OutputError(f"{self.dst}: appeared while writing; not replacing it without --overwrite")
            os.replace(self.partial, self.dst)
        except BaseException as e:
            self.abort()
            if isinstance(e, (av.FFmpegError, OSError)) and not isinstance(e, OutputError):
                raise OutputError(f"{self.dst}: could not finish the file: {e}") from e
            raise
        self._closed = True
        return self.dst

    def abort(self) -> None:
        """Stop writing and remove the temporary file (kept when ``keep_partial``); the target is untouched."""
        if self._closed:
            return
        self._closed = True
        try:
            self._out.close()
        except (av.FFmpegError, OSError, ValueError):
            pass  # the partial file is being discarded; its trailer does not matter
        self._close_input()
        if not self.keep_partial:
            self._remove_partial()

    def _close_input(self) -> None:
        if self._in is not None:
            self._in.close()
            self._in = None
            self._demux = None

    def _remove_partial(self) -> None:
        try:
            self.partial.unlink()
        except FileNotFoundError:
            pass
