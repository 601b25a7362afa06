"""The benchmark harness: its maths, and a smoke run of every section on a tiny model so it cannot rot.

The smoke run is the real command (``python -m benchmarks.run --smoke --out DIR``) in a fresh process:
same sections, same peers, same report code as ``make bench``, on a near-identity model and tiny frames.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` (not `python -m pytest`) does not put the checkout on sys.path
    sys.path.insert(0, str(ROOT))

from benchmarks import common, report  # noqa: E402
from benchmarks.common import Stat, cpu_peak, fastest_peer, gpu_peak, interleaved, psnr, round_orders  # noqa: E402


# ----------------------------------------------------------------------------------------------
# pure helpers


def test_flops_match_the_brief_for_the_real_architectures():
    from esrgan_video.arch.rrdbnet import RRDBParams

    x4 = RRDBParams().flops_per_input_pixel
    anime = RRDBParams(nb=6).flops_per_input_pixel
    assert x4 == pytest.approx(35.853696e6, rel=1e-6)
    assert anime == pytest.approx(11.412864e6, rel=1e-6)
    # 480x270 → 1080p with x4plus: ~4.6 TFLOP a frame (docs/DESIGN numbers)
    assert common.frame_flops(270, 480, x4) == pytest.approx(4.647e12, rel=1e-3)
    assert common.achieved_flops(2.0, 270, 480, x4) == pytest.approx(2 * 4.647e12, rel=1e-3)
    assert common.executed_pixels(4, (96, 72)) == 4 * 96 * 72


def test_cpu_peak_from_isa_flags():
    p = cpu_peak({"avx2", "fma", "avx", "sse2"}, 2, 2445.4)
    assert p is not None and p.flops == pytest.approx(2 * 2445.4e6 * 32)
    assert "avx2+fma" in p.basis
    assert cpu_peak({"avx512f", "fma", "avx2"}, 1, 1000).flops == pytest.approx(64e9)
    assert cpu_peak({"avx2"}, 1, 1000).flops == pytest.approx(16e9)  # no FMA: half the AVX2 rate
    assert cpu_peak(set(), 4, 1000) is None
    assert cpu_peak({"avx2", "fma"}, 0, 1000) is None


def test_read_cpuinfo_parses_the_first_processor():
    text = "processor\t: 0\nmodel name\t: Test CPU\ncpu MHz\t\t: 1234.5\nflags\t\t: fpu avx2 fma\n\n" \
           "processor\t: 1\nmodel name\t: Other\ncpu MHz\t\t: 99\nflags\t\t: fpu\n"
    info = common.read_cpuinfo(text)
    assert info["model"] == "Test CPU" and info["mhz"] == 1234.5 and info["flags"] == {"fpu", "avx2", "fma"}


def test_gpu_peak_names():
    assert gpu_peak("NVIDIA H100 80GB HBM3", "fp16").flops == pytest.approx(989.4e12)
    assert gpu_peak("NVIDIA H100 PCIe", "fp16").flops == pytest.approx(756e12)
    assert gpu_peak("NVIDIA H200", "fp32").flops == pytest.approx(67e12)
    assert gpu_peak("NVIDIA A100-SXM4-80GB", "bf16").flops == pytest.approx(312e12)
    assert gpu_peak("Some Other GPU", "fp16") is None
    assert common.percent_of_peak(1e12, None) is None
    assert common.percent_of_peak(494.7e12, gpu_peak("NVIDIA H100 80GB HBM3", "fp16")) == pytest.approx(50.0, rel=1e-3)


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == math.inf
    b = a.copy()
    b[0, 0, 0] = 255  # MSE = 255^2 / 48
    assert psnr(a, b) == pytest.approx(10 * math.log10(48), rel=1e-9)
    assert psnr(a, b, border=1) == math.inf  # the differing pixel is on the border
    f = np.full((2, 2, 3), 0.5, np.float32)
    assert psnr(f, f + 0.1) == pytest.approx(20.0, abs=1e-4)  # float data range 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, f)


def test_planes_psnr_counts_every_sample_once():
    y, u, v = np.zeros((4, 4), np.uint8), np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.uint8)
    frame = [y, u, v]
    assert common.planes_psnr([frame, frame], [frame, frame]) == math.inf
    hit = [y, u.copy(), v]
    hit[1][0, 0] = 255  # one sample of 2 x 24 differs: MSE = 255^2 / 48
    assert common.planes_psnr([frame, frame], [frame, hit]) == pytest.approx(10 * math.log10(48), rel=1e-9)


def test_round_orders_vary_who_goes_first_and_who_follows_whom():
    names = ["ours", "torch", "spandrel", "realesrgan", "vsmlrt"]
    orders = round_orders(names, 12)
    assert orders[0] == names and orders == round_orders(names, 12)  # deterministic
    assert all(sorted(o) == sorted(names) for o in orders)
    assert len({o[0] for o in orders}) >= 3
    flat = [n for o in orders for n in o]
    before_ours = {flat[i - 1] for i in range(1, len(flat)) if flat[i] == "ours"}
    assert len(before_ours) >= 3  # a fixed rotation would always put vsmlrt before ours


def test_interleaved_order_warmup_and_settle_pauses():
    calls: list[str] = []
    pauses: list[float] = []
    runners = {n: (lambda n=n: calls.append(n) or n.upper()) for n in ("x", "y")}
    stats, first = interleaved(runners, repeats=3, warmup=2, sleep=pauses.append)
    assert calls[:4] == ["x", "x", "y", "y"]
    assert calls[4:] == [n for o in round_orders(["x", "y"], 3) for n in o]
    assert len(pauses) == 6 and all(p > 0 for p in pauses)
    assert first == {"x": "X", "y": "Y"}
    assert {k: v.n for k, v in stats.items()} == {"x": 3, "y": 3}
    calls.clear()
    cpu: dict[str, list[float]] = {}
    stats, first = interleaved(runners, repeats=1, warmup=0, cpu=cpu, settle=0)
    assert calls == ["x", "y"] and first == {"x": "X", "y": "Y"}
    assert {k: len(v) for k, v in cpu.items()} == {"x": 1, "y": 1} and all(t >= 0 for v in cpu.values() for t in v)
    with pytest.raises(ValueError):
        interleaved(runners, repeats=0)


def test_fastest_peer_skips_ours_diagnostics_and_unavailable_rows():
    rows = [
        {"runner": "ours", "peer": "ours", "available": True, "median_s": 0.1},
        {"runner": "ours torch", "peer": "ours-diagnostic", "available": True, "median_s": 0.2},
        {"runner": "vsmlrt on our graph", "peer": "peer-diagnostic", "available": True, "median_s": 0.3},
        {"runner": "vsmlrt", "peer": "vsmlrt-ort", "available": True, "median_s": 0.5},
        {"runner": "spandrel", "peer": "spandrel", "available": True, "median_s": 0.6},
        {"runner": "gone", "peer": "realesrgan", "available": False, "error": "not installed"},
    ]
    assert fastest_peer(rows)["runner"] == "vsmlrt"
    assert fastest_peer(rows[:3] + rows[5:]) is None


def test_ratio_of_medians_is_their_time_over_ours():
    ours, theirs = Stat.of([1.0, 2.0, 3.0]), Stat.of([4.0, 4.0, 100.0])
    assert ours.median == 2.0 and theirs.median == 4.0
    assert common.ratio_of_medians(ours, theirs) == 2.0
    with pytest.raises(ValueError):
        Stat.of([])


def test_verdict_band():
    assert report.verdict_of(1.2) == "faster" and report.verdict_of(0.8) == "slower"
    assert report.verdict_of(0.99).startswith("on par") and report.verdict_of(1.04).startswith("on par")


def test_jsonable_and_loaded_machine():
    data = common.jsonable({"a": math.inf, "b": (1, np.float32(2.5)), "c": {3, 1}, "p": Path("/x")})
    assert data == {"a": "inf", "b": [1, 2.5], "c": [1, 3], "p": "/x"}
    json.dumps(data)
    assert common.is_loaded([5.0, 1, 1], 2) and not common.is_loaded([2.0, 9, 9], 2)
    assert not common.is_loaded(None, 2)


@pytest.mark.usefixtures("torch_one_thread")
def test_realesrgan_tile_pixels_counts_what_realesrganer_feeds_its_model(tmp_path):
    """Our reproduction of RealESRGANer's tiling arithmetic, checked against the real thing."""
    from benchmarks import peers
    from benchmarks.run import realesrgan_tile_pixels
    from esrgan_video.testing import near_identity_model

    try:
        peers.import_realesrgan()
    except peers.PeerUnavailable as e:
        pytest.skip(f"official Real-ESRGAN not installed: {e}")
    model = near_identity_model(nf=8, gc=32)
    runner = peers.realesrgan(model, tmp_path, tile=8, tile_pad=3)
    seen: list[int] = []
    up = runner.impl
    assert type(up).__name__ == "RealESRGANer"
    up.model.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[-2] * args[0].shape[-1]))
    frame = (np.random.default_rng(0).random((21, 19, 3)) * 255).astype(np.uint8)
    out = runner(frame)
    assert out.shape == (84, 76, 3)
    assert sum(seen) == realesrgan_tile_pixels(21, 19, 8, 3)
    assert len(seen) == 9


def test_functional_tensor_shim_exposes_rgb_to_grayscale():
    from benchmarks import peers

    pytest.importorskip("torchvision")
    peers.shim_functional_tensor()
    mod = sys.modules[peers.FUNCTIONAL_TENSOR]
    assert callable(mod.rgb_to_grayscale)
    assert peers.shim_functional_tensor() is False  # already registered: a no-op


def test_memory_allowance():
    from benchmarks.run import MEMORY_FLOOR, memory_allowance

    # quick mode: 90 extra 704x576 output frames → a quarter frame each (~27 MiB)
    assert memory_allowance(growth_frames=90, output_frame_bytes=704 * 576 * 3) == 90 * 704 * 576 * 3 // 4
    assert memory_allowance(growth_frames=18, output_frame_bytes=128 * 96 * 3) == MEMORY_FLOOR


def test_smoke_requires_out():
    from benchmarks.run import main

    with pytest.raises(SystemExit) as e:
        main(["--smoke"])
    assert e.value.code == 2


# ----------------------------------------------------------------------------------------------
# the whole harness, tiny


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    p = subprocess.run([sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return out, json.loads((out / "cpu-smoke.json").read_text()), p.stdout


def test_smoke_run_writes_every_section(smoke):
    out, res, stdout = smoke
    assert res["errors"] == {}
    for section in ("inference", "peers", "fidelity", "e2e", "memory", "first_frame"):
        assert section in res, section
    meta = res["meta"]
    assert meta["mode"] == "smoke" and "--smoke" in meta["command"]
    assert meta["machine"]["usable_cores"] >= 1 and meta["versions"]["torch"]
    assert meta["env"]["OMP_WAIT_POLICY"]  # recorded (PASSIVE unless the caller set one)
    assert "ours" in stdout


def test_smoke_inference_rows_have_consistent_units(smoke):
    _, res, _ = smoke
    rows = res["inference"]["rows"]
    variants = {r["variant"] for r in rows}
    assert {"Upscaler", "Upscaler torch", "Upscaler tile=8", "Upscaler tile=8 torch", "backend onnxruntime",
            "backend torch NCHW", "backend torch channels_last"} <= variants
    by_variant = {r["variant"]: r for r in rows}
    assert by_variant["Upscaler"]["backend"] == "onnxruntime cpu fp32"  # the CPU default where onnxruntime is
    assert by_variant["Upscaler torch"]["backend"] == "torch cpu fp32"
    for r in rows:
        assert r["fps"] == pytest.approx(1.0 / r["median_s"])
        assert r["input_px_per_s"] == pytest.approx(r["fps"] * r["width"] * r["height"])
        flops = r["fps"] * r["width"] * r["height"] * r["flops_per_input_pixel"]
        assert r["useful_gflops"] == pytest.approx(flops / 1e9)
        assert r["executed_px_per_frame"] >= r["width"] * r["height"]
    tiled = next(r for r in rows if r["variant"] == "Upscaler tile=8")
    assert tiled["tiles"] > 1


def test_smoke_peers_compute_our_function(smoke):
    _, res, _ = smoke
    whole = next(g for g in res["peers"]["groups"] if g["setting"] == "whole frame")
    rows = {r["runner"]: r for r in whole["rows"]}
    assert set(rows) == {"ours", "ours --backend torch (diagnostic)", "spandrel", "realesrgan", "vsmlrt-ort",
                         "vsmlrt-ort on our graph (diagnostic)"}
    assert rows["ours"]["settings"]["backend"] == "auto → onnxruntime cpu fp32"
    assert rows["ours --backend torch (diagnostic)"]["settings"]["backend"] == "torch cpu fp32"
    for name, r in rows.items():
        if not r["available"]:
            assert r["error"], name  # an unavailable peer carries its reason
            continue
        psnr_db = r["psnr_vs_ours_db"]
        assert psnr_db == "inf" or psnr_db > 45, (name, psnr_db)  # same weights, same function
        assert r["ours_speedup"] > 0 and r["ours_speedup_best"] > 0 and r["cpu_s_median"] >= 0
        assert r["executed_px_per_frame"] == 24 * 16
    assert rows["ours"]["ours_speedup"] == 1.0
    d = whole.get("realesrgan_default_pre_pad")
    if rows["realesrgan"]["available"]:
        # reflect pre-padding changes the output near the bottom/right edges only
        full, interior = d["psnr_vs_ours_db"], d["psnr_vs_ours_excluding_bottom_right_band_db"]
        assert full != "inf" and (interior == "inf" or interior > full)
    tiled = next(g for g in res["peers"]["groups"] if g["setting"].startswith("tile="))
    assert tiled["reference"] == "ours" and tiled["ours"] == "ours tile=8"
    assert all(r.get("psnr_vs_ours_db") for r in tiled["rows"] if r["available"])
    summary = res["peers"]["summary"]
    assert summary and all(s["ours_vs_fastest_peer"] > 0 for s in summary)
    whole_summary = next(s for s in summary if s["setting"] == "whole frame")
    if rows["vsmlrt-ort"]["available"]:
        # the diagnostic row runs our graph in vs-mlrt: reported beside, never counted as the fastest peer
        assert whole_summary["fastest_peer"] != "vsmlrt-ort on our graph (diagnostic)"
        assert whole_summary["peer_on_our_graph"] == "vsmlrt-ort on our graph (diagnostic)"


def test_smoke_e2e_memory_first_frame(smoke):
    _, res, _ = smoke
    e2e = res["e2e"]
    assert e2e["frames_written"] == e2e["frames"] == 3
    assert e2e["ratio"] == pytest.approx(e2e["e2e_fps"] / e2e["inference_only_fps"])
    assert set(e2e["stage_seconds"]) == {"decode", "convert", "infer", "encode"}
    mem = res["memory"]
    assert (mem["frames_n"], mem["frames_10n"]) == (2, 20)
    assert mem["bounded"] is True, mem
    ff = res["first_frame"]["rows"][0]
    assert ff["time_to_first_frame_cold_s"] >= ff["load_cold_s"] + ff["first_frame_cold_s"]
    assert ff["backend"] == "onnxruntime"
    assert 0 < ff["backend_build_cold_s"] <= ff["first_frame_cold_s"]
    assert ff["backend_build_warm_s"] < ff["backend_build_cold_s"]  # the export is made once per weights
    fid = res["fidelity"]["rows"][0]
    from esrgan_video import tiling

    assert fid["tiles"] > 1 and fid["tile_pad"] == tiling.DEFAULT_TILE_PAD  # the tiling defaults, really tiled
    assert fid["blend"] == tiling.DEFAULT_BLEND
    assert fid["psnr_tiled_vs_whole_db"] == "inf" or fid["psnr_tiled_vs_whole_db"] > 30


def test_smoke_report_files(smoke):
    out, res, _ = smoke
    md = (out / "BENCHMARKS.md").read_text()
    for heading in ("Inference only", "Peers", "Fidelity", "End to end", "Memory", "Time to first frame"):
        assert heading in md
    assert res["meta"]["command"] in md
    assert "| runner |" in md and "spandrel" in md
    if "path" in res.get("plot", {}):
        png = out / "cpu-smoke.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "cpu-smoke.png" in md
    # the Markdown is a pure function of the JSON: regenerating it gives the same page
    assert report.write_markdown(out).read_text() == md


def test_layer_cost_grows_the_changed_blocks_by_one_pixel_per_layer():
    from benchmarks.reuse_bench import dilate, layer_cost
    from esrgan_video.frames.reuse import NearRule

    one = np.zeros((9, 9), bool)
    one[4, 4] = True
    assert dilate(one, 2).sum() == 25 and dilate(one, 2)[2:7, 2:7].all()
    rng = np.random.default_rng(0)
    still = [rng.integers(0, 256, (64, 96), dtype=np.uint8), rng.integers(0, 256, (32, 48), dtype=np.uint8),
             rng.integers(0, 256, (32, 48), dtype=np.uint8)]
    assert layer_cost([still] * 4, block=16, layers=4, rule=NearRule()) == 1 / 4
    moved = [p.copy() for p in still]
    moved[0][20:24, 40:44] ^= 0x80  # block (1, 2): rows 16..32, cols 32..48
    cost = layer_cost([still, moved, moved], block=16, layers=4, rule=NearRule())
    # layer k recomputes the 16×16 block grown by k: (16 + 2k)² for k = 1..4, averaged over the 4 layers; the third
    # frame equals the reference the second left, so it runs nothing
    per_layer = sum((16 + 2 * k) ** 2 for k in range(1, 5)) / 4 / (64 * 96)
    assert cost == pytest.approx((1 + per_layer) / 3)
    # cheaper than recomputing the region grown twice by the receptive field, dearer than the block alone
    from benchmarks.reuse_bench import region_cost
    assert (1 + 16 * 16 / (64 * 96)) / 3 < cost < region_cost([still, moved, moved], block=16, pad=4, rule=NearRule())


def test_region_cost_counts_only_the_changed_region_grown_by_the_receptive_field():
    from benchmarks.reuse_bench import region_cost
    from esrgan_video.frames.reuse import NearRule

    rng = np.random.default_rng(0)
    still = [rng.integers(0, 256, (64, 96), dtype=np.uint8), rng.integers(0, 256, (32, 48), dtype=np.uint8),
             rng.integers(0, 256, (32, 48), dtype=np.uint8)]
    assert region_cost([still] * 4, block=16, pad=4, rule=NearRule()) == 1 / 4  # only the first frame runs
    moved = [p.copy() for p in still]
    moved[0][20:24, 40:44] ^= 0x80  # one small moving detail inside block (1, 2)
    cost = region_cost([still, moved, moved], block=16, pad=4, rule=NearRule())
    # block rows 16..32, cols 32..48, grown by 4 (outputs that see it) and 4 more (their input): 32×32 of 64×96; the
    # third frame equals the reference the second one left (per pixel), so it runs nothing
    assert cost == (1 + 32 * 32 / (64 * 96)) / 3


@pytest.mark.parametrize("grain", ["block", "pixel"])
def test_incremental_compact_equals_the_whole_frame_model_where_only_some_blocks_changed(grain):
    import torch

    from benchmarks.incremental_bench import IncrementalCompact, rectangles
    from esrgan_video.arch.srvgg import SRVGGNetCompact

    torch.manual_seed(0)
    net = SRVGGNetCompact(num_conv=4, nf=8, scale=2).eval()
    mask = np.array([[1, 1, 0, 1], [1, 1, 0, 0], [0, 1, 1, 1]], bool)
    rects = rectangles(mask)
    cover = np.zeros_like(mask, int)
    for y0, y1, x0, x1 in rects:
        cover[y0:y1, x0:x1] += 1
    assert (cover == mask).all()  # the rectangles tile the mask exactly, without overlap
    a = torch.rand(1, 3, 40, 52)  # not a multiple of the block: edge blocks are partial
    inc = IncrementalCompact(net, 40, 52, block=8, grain=grain)
    with torch.no_grad():
        assert torch.allclose(inc.step(a, np.ones((5, 7), bool)), net(a), atol=1e-6)
        b = a.clone()
        b[..., 17:20, 33:36] = torch.rand(3, 3, 3)  # inside block (2, 4)
        dirty = np.zeros((5, 7), bool)
        dirty[2, 4] = True
        before = inc.computed
        out = inc.step(b, dirty)
        assert torch.allclose(out, net(b), atol=1e-6)
        # it recomputed far less than the whole frame: 5 layers of the 8×8 block grown by k (or by whole blocks)
        assert inc.computed - before < (5 * 40 * 52) * (0.7 if grain == "block" else 0.4)
        # a block wrongly left out of `dirty` is not recomputed: the output differs from the model's there
        c = b.clone()
        c[..., 1:4, 1:4] = 1 - c[..., 1:4, 1:4]
        inc.step(c, dirty)
        fresh = IncrementalCompact(net, 40, 52, block=8, grain=grain)
        fresh.step(c, np.ones((5, 7), bool))
        assert (inc.features[-1] - fresh.features[-1]).abs().max() > 1e-4  # the equal ones: ~1e-7
        # and the features of a correct step are the whole-frame model's, not just its clamped output
        inc.step(c, np.ones((5, 7), bool))
        assert torch.allclose(inc.features[-1], fresh.features[-1], atol=1e-6)
