"""``esrgan-video preview IN --at T [--model M [--blend B:A]]... -o preview.png``: choose a model before committing hours.

One PNG. Columns: the source frame (bicubic to the output size), then one per ``--model`` (repeatable; a
``--blend`` applies to the ``--model`` before it), each labelled. Rows: the whole frame at the output size (scaled
down only where the sheet would pass 3840 px wide), then a 1:1 crop of a detail region (the centre, or
``--crop X,Y,W,H`` in source pixels).

A column is made exactly as a video run makes that frame: the same options (size, fit, codec → output pixel
format, tiles, backend, ...), the same output plan (:func:`esrgan_video.video.output_plan.plan_output`) and the
same :class:`~esrgan_video.frames.transform.FrameTransform`; its output planes are shown through the same colour
code (the transform without a model, to packed rgb24) as 8-bit RGB. The source column is the same transform
without a model (colour code and the device resize only). A still image (``--at 0``) is previewed as
``esrgan-video IN OUT.png`` upscales it (``stills.upscale_samples``: 16 bits, grey, alpha beside), not as a video:
its columns are that picture at 8 bits, its source column an antialiased bicubic enlargement. Labels use the
built-in bitmap font (``cli.font``).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import EsrganVideoError, OptionError, OutputError
from ..files import check_can_create, check_output_place
from ..options import DEFAULT_MODEL, UpscaleOptions, parse_time
from .arguments import add_upscale_options, command_parser, report_error, upscale_options
from .font import text_mask, text_size

MAX_WIDTH = 3840
"""The whole-frame row is scaled down only where the sheet would be wider than this."""
GUTTER = 8
LABEL_SCALE = 2
LABEL_PAD = 4
BACKGROUND = (24, 24, 24)
INK = (255, 255, 255)


@dataclass(frozen=True)
class Column:
    """One column of the sheet: its label and its frame as 8-bit RGB (H×W×3) at the output size."""

    label: str
    rgb: np.ndarray


@dataclass(frozen=True)
class Layout:
    """Where everything lies on the sheet (pixels; boxes are (x, y, w, h))."""

    width: int
    height: int
    scale: float
    """Of the whole-frame row (1 = output size)."""
    labels: tuple[tuple[int, int, int, int], ...]
    wholes: tuple[tuple[int, int, int, int], ...]
    crops: tuple[tuple[int, int, int, int], ...]
    crop_region: tuple[int, int, int, int]
    """The detail region in the (first column's) output pixels."""


# argument parsing -----------------------------------------------------------------------------------------
class _ModelColumn(argparse.Action):
    """``--model`` appends a column; ``--blend`` sets the blend of the last one (of the default model if none)."""

    def __call__(self, parser, namespace, value, option_string=None):
        cols = list(getattr(namespace, "columns", None) or [])
        if option_string == "--model":
            cols.append([value, None])
        else:
            if not cols:
                cols.append([DEFAULT_MODEL, None])
            if cols[-1][1] is not None:
                parser.error(f"--blend: one per --model (the last --model, {cols[-1][0]}, has one already)")
            cols[-1][1] = value
        namespace.columns = cols


def parse_crop(text: str) -> tuple[int, int, int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*", text)
    if not m or int(m.group(3)) < 1 or int(m.group(4)) < 1:
        raise OptionError("crop", "X,Y,W,H in source pixels with W, H >= 1 (e.g. 100,50,64,64)", text)
    x, y, w, h = (int(g) for g in m.groups())
    return x, y, w, h


def build_parser() -> argparse.ArgumentParser:
    p = command_parser(
        "preview",
        "Write one PNG that compares models on one frame: the source (bicubic to the output size), then "
        "one column per --model; a row with the whole frame and a row with a 1:1 crop of a detail region. "
        "The frame is made exactly as a video run with the same options makes it.")
    p.add_argument("input", help="input video or still image")
    p.add_argument("--at", required=True, help="the frame: seconds, [HH:]MM:SS(.ms) or a frame number (120f)")
    p.add_argument("-o", "--output", required=True, help="the PNG to write")
    p.add_argument("-y", "--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--model", action=_ModelColumn, dest="columns", metavar="MODEL",
                   help=f"a column per model, in order (repeatable; default: {DEFAULT_MODEL})")
    p.add_argument("--blend", action=_ModelColumn, dest="columns", metavar="MODEL:ALPHA",
                   help="network interpolation for the --model before it, e.g. RealESRNet_x4plus:0.3")
    p.add_argument("--crop", metavar="X,Y,W,H", help="the detail region in source pixels (default: the centre)")
    p.add_argument("-q", "--quiet", action="store_true", help="no notices")
    add_upscale_options(p, model=False, trim=False, file=False)
    return p


# the frames -------------------------------------------------------------------------------------------------
def display_rgb(planes: Sequence[np.ndarray], fmt) -> np.ndarray:
    """Output planes (``fmt``: their ``FrameFormat``) as 8-bit RGB H×W×3, through the colour code a video run uses
    (the frame transform without a model: colour in, packed rgb24 out)."""
    from ..frames.color import ColorSpec
    from ..frames.pixel_formats import pixel_format
    from ..frames.transform import FrameFormat, FrameTransform

    rgb24 = pixel_format("rgb24")
    h, w = np.asarray(planes[0]).shape[:2]
    (out,) = FrameTransform(None, src=fmt, dst=FrameFormat(rgb24, ColorSpec().resolved(w, h, rgb24)))(list(planes))
    return out


def _short(model: str) -> str:
    """A model's name for a label: a registry name as it is, a checkpoint path by its file stem."""
    p = Path(str(model))
    return p.stem if p.suffix or len(p.parts) > 1 else str(model)


def column_label(model: str, blend: str | tuple | None) -> str:
    """``"RealESRGAN_x4plus"``, or ``"RealESRGAN_x4plus + RealESRNet_x4plus 0.3"`` with a blend."""
    if blend is None:
        return _short(model)
    other, alpha = blend if isinstance(blend, tuple) else str(blend).rsplit(":", 1)
    return f"{_short(model)} + {_short(other)} {alpha}"


def last_frame_at(inp, at):
    """``at`` (seconds, or a frame number as it is), or the last frame's number where ``at`` falls after that frame's
    start but before it ends (its packet's duration, else one frame at the stream's rate): the frame on screen then,
    which a trim from ``at`` would not select. From the end of the last frame on, ``at`` stays (and is refused)."""
    if isinstance(at, int):
        return at
    times = inp.frame_times()
    if not times or at <= times[-1]:
        return at
    from ..video.packet_index import NOPTS

    index = inp.packet_index()
    timed = index.pts != NOPTS
    last = int(np.argmax(np.where(timed, index.pts, np.iinfo(np.int64).min))) if timed.any() else None
    lasts = None if last is None else int(index.durations[last]) * index.time_base
    rate = inp.info.frame_rate
    lasts = lasts or (1 / rate if rate else None)
    return len(times) - 1 if lasts is not None and at < times[-1] + lasts else at


def make_columns(src: str | Path, at, columns: Sequence[tuple[str, str | None]], options: UpscaleOptions, *,
                 notice=None, crop: tuple[int, int, int, int] | None = None) -> tuple[list[Column], tuple[int, int]]:
    """The source column and one per (model, blend), each made as a video run makes the frame at ``at`` (a still
    image: as ``esrgan-video IN OUT.png`` makes it, :func:`still_columns`); and the source's (width, height).
    ``crop``: the detail region (source pixels), checked against the source before any model runs."""
    from ..stills import probe_still_job

    still, meta = probe_still_job(src, "preview.mkv")  # a still (not an animation) to a video would be a still run
    if still:
        return still_columns(src, at, columns, options, meta=meta, notice=notice, crop=crop)
    from ..frames.transform import FrameTransform
    from ..upscaler import Upscaler
    from ..video.output_plan import check_plan, plan_output
    from ..video.reader import open_input
    from ..video.trim import check_trim

    say = notice or (lambda msg: None)
    out: list[Column] = []
    with open_input(src) as inp:
        info = inp.info
        at = last_frame_at(inp, at)
        try:
            check_trim(inp, at, None)
        except OptionError as e:
            raise OptionError("at", e.expected.replace("a trim that selects at least one frame of", "a time within"),
                              e.got.removeprefix("--start ")) from None  # as said: 1.5, 120f (not a Fraction)
        check_crop(crop, (info.width, info.height))
        # what the plan refuses (--pix-fmt, --preset, --crf, size options) needs no model: said before one loads
        check_plan(info, options, src=src, dst="preview.mkv")
        frame = next(iter(inp.frames(start=at)))
        source_plan = None
        for model, blend in columns:
            opts = dataclasses.replace(options, model=dataclasses.replace(options.model, model=model, blend=blend))
            with Upscaler(opts.model, opts.runtime) as up:
                plan = plan_output(info, opts, model_scale=up.scale, src=src, dst="preview.mkv")
                for msg in plan.notices:
                    say(msg)
                source_plan = source_plan or plan
                transform = FrameTransform(up, src=plan.src, dst=plan.dst, in_size=(info.width, info.height),
                                           out_size=plan.size.size, resize=plan.size.resize, notice=say)
                planes = transform(frame.planes)
            out.append(Column(column_label(model, blend), display_rgb(planes, plan.dst)))
        bicubic = FrameTransform(None, src=source_plan.src, dst=source_plan.dst, out_size=source_plan.size.size,
                                 resize=source_plan.size.resize)
        out.insert(0, Column("source bicubic", display_rgb(bicubic(frame.planes), source_plan.dst)))
    return out, (info.width, info.height)


def still_columns(src: str | Path, at, columns: Sequence[tuple[str, str | None]], options: UpscaleOptions, *,
                  meta=None, notice=None, crop: tuple[int, int, int, int] | None = None
                  ) -> tuple[list[Column], tuple[int, int]]:
    """:func:`make_columns` for a still image (``at`` 0): each model's column is the picture
    ``esrgan-video IN OUT.png`` writes with the same options (``stills.upscale_samples``: 16 bits, grey, the alpha
    upscaled beside), shown as 8-bit RGB; the source column is its antialiased bicubic enlargement."""
    from ..stills import read_image, upscale_samples, video_only_notice
    from ..upscaler import Upscaler
    from ..video.images import image_meta, round_to_8bit

    say = notice or (lambda msg: None)
    if at != 0:
        given = f"{at}f" if isinstance(at, int) else f"{float(at):g}"
        raise OptionError("at", f"0 for {src}, a still image", given)
    unused = video_only_notice(options, src)
    if unused:
        say(unused)
    meta = image_meta(src) if meta is None else meta
    samples, alpha, bits = read_image(src, keep_grey=True, meta=meta)
    check_crop(crop, (samples.shape[1], samples.shape[0]))
    if meta.frames > 1:
        say(f"{src}: a TIFF of {meta.frames} pages; the first is shown, as a still run upscales it")
    if alpha is not None:
        say(f"{src}: the sheet shows the colour; the alpha channel is upscaled beside it, not shown")

    def as_rgb(pixels: np.ndarray) -> np.ndarray:  # grey as R=G=B
        return np.repeat(pixels[..., None], 3, axis=2) if pixels.ndim == 2 else pixels

    def shown(pixels: np.ndarray) -> np.ndarray:  # as 8-bit RGB
        return np.ascontiguousarray(as_rgb(round_to_8bit(pixels) if pixels.dtype == np.uint16 else pixels))

    plan_still_columns(src, (samples.shape[1], samples.shape[0]), columns, options)  # before any model
    out: list[Column] = []
    for model, blend in columns:
        opts = dataclasses.replace(options, model=dataclasses.replace(options.model, model=model, blend=blend))
        with Upscaler(opts.model, opts.runtime) as up:
            big, _ = upscale_samples(up, samples, alpha, bits, opts.size, notice=say, name=src)
        out.append(Column(column_label(model, blend), shown(big)))
    h, w = out[0].rgb.shape[:2]
    out.insert(0, Column("source bicubic", _scaled(as_rgb(samples), w, h)))
    return out, (samples.shape[1], samples.shape[0])


def plan_still_columns(src: str | Path, source_size: tuple[int, int], columns: Sequence[tuple[str, str | None]],
                       options: UpscaleOptions) -> None:
    """Plan each still column's picture size before any model is looked up, downloaded or built, as
    ``stills.upscale_samples`` plans it (``stills._planned_size``: ``--size``/``--fit``, ``--scale``, else the
    model's scale), where it is known without the model (a registry name's scale, ``--scale`` or ``--size``; not
    where a checkpoint's weights tell it). A picture FFmpeg cannot hold (``video.frame_limits.picture_fits``: a still
    run could not write it, the column could not be made) is refused in one line naming the file, not after the
    model was found and ran."""
    from ..stills import _planned_size
    from ..video.frame_limits import picture_fits
    from ..video.output_plan import known_scale

    size = options.size
    w, h = source_size
    for model, blend in columns:
        scale = known_scale(dataclasses.replace(options.model, model=model, blend=blend))
        if scale is None and size.size is None and size.scale is None:
            continue
        out, _, _ = _planned_size(source_size, size, scale)
        if not picture_fits(*out):
            how = (f"--scale {size.scale:g}" if size.scale is not None else "--size" if size.size is not None
                   else f"the model's x{scale}")
            raise OutputError(f"{src}: the {column_label(model, blend)} column would be {out[0]}x{out[1]} ({w}x{h} "
                              f"by {how}), more than FFmpeg encodes in one picture ((width + 128) x (height + 128) "
                              "under 2^28), so a still run could not write it either; use a smaller --scale or --size")


# the sheet --------------------------------------------------------------------------------------------------
def check_crop(crop: tuple[int, int, int, int] | None, source_size: tuple[int, int]) -> None:
    """OptionError unless the detail region ``crop`` (x, y, w, h in source pixels; None: the centre) starts inside
    the source (it is cut to the source's edge)."""
    if crop is not None and (crop[0] >= source_size[0] or crop[1] >= source_size[1]):
        raise OptionError("crop", f"a region inside the {source_size[0]}x{source_size[1]} source",
                          ",".join(str(v) for v in crop))


def layout(sizes: Sequence[tuple[int, int]], *, source_size: tuple[int, int],
           crop: tuple[int, int, int, int] | None = None, max_width: int = MAX_WIDTH) -> Layout:
    """Where the labels, whole frames and crops of columns of output ``sizes`` (w, h) go (pure).

    ``crop``: the detail region in source pixels (``source_size`` = (w, h) of the source); None: the centre, as
    wide and high as a whole-frame cell (half the frame where the whole row is not scaled down)."""
    n = len(sizes)
    label_h = text_size("X", LABEL_SCALE)[1] + 2 * LABEL_PAD
    natural = sum(w for w, _ in sizes) + (n + 1) * GUTTER
    scale = min(1.0, (max_width - (n + 1) * GUTTER) / sum(w for w, _ in sizes)) if natural > max_width else 1.0
    cells = [(max(1, round(w * scale)), max(1, round(h * scale))) for w, h in sizes]
    w0, h0 = sizes[0]
    if crop is None:
        cw, ch = (cells[0] if scale < 1 else (max(1, w0 // 2), max(1, h0 // 2)))
        region = ((w0 - cw) // 2, (h0 - ch) // 2, cw, ch)
    else:
        check_crop(crop, source_size)
        sw, sh = source_size
        x, y, cw, ch = crop
        fx, fy = w0 / sw, h0 / sh
        rx, ry = round(x * fx), round(y * fy)
        region = (rx, ry, max(1, min(round(cw * fx), w0 - rx)), max(1, min(round(ch * fy), h0 - ry)))
    col_w = [max(c[0], region[2]) for c in cells]
    whole_h = max(c[1] for c in cells)
    labels, wholes, crops = [], [], []
    x = GUTTER
    for (cw_, chh), width in zip(cells, col_w):
        labels.append((x, GUTTER, width, label_h))
        wholes.append((x, GUTTER + label_h, cw_, chh))
        crops.append((x, GUTTER + label_h + whole_h + GUTTER, region[2], region[3]))
        x += width + GUTTER
    height = GUTTER + label_h + whole_h + GUTTER + region[3] + GUTTER
    return Layout(width=x, height=height, scale=scale, labels=tuple(labels), wholes=tuple(wholes),
                  crops=tuple(crops), crop_region=region)


def _scaled(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """8- or 16-bit RGB resized to ``w``×``h`` (antialiased bicubic), as 8-bit RGB."""
    if rgb.shape[:2] == (h, w) and rgb.dtype == np.uint8:
        return rgb
    from ..frames.sizing import resize_rgb

    peak = 65535.0 if rgb.dtype == np.uint16 else 255.0
    t = torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1).unsqueeze(0) / peak
    y = resize_rgb(t, w, h)[0].permute(1, 2, 0)
    return (y * 255.0).round().clamp(0, 255).to(torch.uint8).contiguous().numpy()


def _fit_label(text: str, width: int) -> str:
    """``text``, cut to fit ``width`` (a cut label ends in ``..``)."""
    room = width - 2 * LABEL_PAD
    if text_size(text, LABEL_SCALE)[0] <= room:
        return text
    while text and text_size(text + "..", LABEL_SCALE)[0] > room:
        text = text[:-1]
    return text + ".." if text else ""


def compose(columns: Sequence[Column], *, source_size: tuple[int, int],
            crop: tuple[int, int, int, int] | None = None, max_width: int = MAX_WIDTH) -> tuple[np.ndarray, Layout]:
    """The sheet (H×W×3 uint8) and its layout."""
    lay = layout([(c.rgb.shape[1], c.rgb.shape[0]) for c in columns], source_size=source_size, crop=crop,
                 max_width=max_width)
    sheet = np.empty((lay.height, lay.width, 3), np.uint8)
    sheet[:] = BACKGROUND
    rx, ry, rw, rh = lay.crop_region
    w0, h0 = columns[0].rgb.shape[1], columns[0].rgb.shape[0]
    for col, lab, whole, cbox in zip(columns, lay.labels, lay.wholes, lay.crops):
        mask = text_mask(_fit_label(col.label, lab[2]), LABEL_SCALE)
        x, y = lab[0] + LABEL_PAD, lab[1] + LABEL_PAD
        sheet[y:y + mask.shape[0], x:x + mask.shape[1]][mask] = INK
        x, y, w, h = whole
        sheet[y:y + h, x:x + w] = _scaled(col.rgb, w, h)
        ch, cw = col.rgb.shape[:2]
        # the same region of each column (columns of other sizes: scaled to their own frame)
        fx, fy = cw / w0, ch / h0
        sx, sy = round(rx * fx), round(ry * fy)
        part = col.rgb[sy:sy + rh, sx:sx + rw]
        x, y, w, h = cbox
        sheet[y:y + part.shape[0], x:x + part.shape[1]] = part
    return sheet, lay


def check_output(dst: Path, *, overwrite: bool, src: str | Path | None = None) -> None:
    """OptionError unless ``dst`` is a .png; OutputError where it cannot go, in the video writer's words
    (:func:`esrgan_video.files.check_output_place`, :func:`~esrgan_video.files.check_can_create`)."""
    if dst.suffix.lower() != ".png":
        raise OptionError("output", "a .png file", str(dst))
    check_output_place(dst, overwrite=overwrite, src=src)
    check_can_create(dst)


def run(args: argparse.Namespace) -> int:
    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"esrgan-video: {msg}", file=sys.stderr))
    try:
        options = upscale_options(args)
        at = parse_time(args.at)
        crop = parse_crop(args.crop) if args.crop else None
    except OptionError as e:
        raise e.relabel({"time": "--at"}) from None  # parse_time's error is about --at here (main names the rest)
    columns = [tuple(c) for c in (args.columns or [[DEFAULT_MODEL, None]])]
    check_output(Path(args.output), overwrite=args.overwrite, src=args.input)  # before any model runs
    from ..video.chatter import show_ffmpeg_log

    show_ffmpeg_log(options.encode.verbose)  # FFmpeg's own log lines only with --verbose, as for a video run
    cols, source_size = make_columns(args.input, at, columns, options, notice=say, crop=crop)
    sheet, lay = compose(cols, source_size=source_size, crop=crop)
    from ..video.images import write_image

    write_image(Path(args.output), sheet, None, 8)  # check_output above said it may go there, before any model ran
    rx, ry, rw, rh = lay.crop_region
    say(f"wrote {args.output} ({lay.width}x{lay.height}: {len(cols)} columns, whole frames at "
        f"{lay.scale:.0%}, detail {rw}x{rh} at {rx},{ry} of the output)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``esrgan-video preview`` (the top-level CLI hands its arguments here and handles errors and signals)."""
    try:
        return run(build_parser().parse_args(argv))
    except EsrganVideoError as e:  # an OptionError named by its flag
        return report_error(e)
