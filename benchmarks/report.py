"""Turn results JSON into the Markdown page (``BENCHMARKS.md``), a PNG plot and a console summary.

The Markdown is regenerated from every ``cpu-*.json`` in the results folder (quick first, then full, then
any other), so the README can include one file that always matches the committed numbers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODE_ORDER = {"quick": 0, "full": 1}
OURS, OURS_BACKEND, PEER, PEER_DIAGNOSTIC = "#d95f02", "#fdae6b", "#7570b3", "#bcbddc"
"""Plot colours: our Upscaler, our bare backend, a peer."""


def _f(x: Any, digits: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return "∞" if x == "inf" else x
    if isinstance(x, float):
        if x != x:
            return "nan"
        if x == float("inf"):
            return "∞"
        return f"{x:.{digits}f}"
    return str(x)


def _mib(b: Any) -> str:
    return "–" if b is None else f"{b / 2**20:.1f} MiB"


PARITY_BAND = 0.05
"""Ratios within ±5 % of 1 are reported as on par: below the noise of interleaved medians on a shared machine."""


def verdict_of(ratio: float) -> str:
    """``faster`` / ``on par`` / ``slower`` for an ours-vs-peer speed ratio (pure)."""
    if ratio >= 1 + PARITY_BAND:
        return "faster"
    if ratio <= 1 - PARITY_BAND:
        return "slower"
    return "on par (within ±5 %)"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def _short(model: str) -> str:
    return {"RealESRGAN_x4plus": "x4plus", "RealESRGAN_x4plus_anime_6B": "anime 6B",
            "realesr-animevideov3": "animevideov3"}.get(model, model)


def markdown(results: dict[str, Any], *, plot_name: str | None = None) -> str:
    """One run's results as Markdown (header facts, then one table per section)."""
    meta = results["meta"]
    mach = meta["machine"]
    v = {k: val for k, val in meta["versions"].items() if val}
    lines = [f"## CPU, `{meta['mode']}` mode ({meta['date']})", ""]
    lines += [
        f"- Command: `{meta['command']}` (git {meta.get('git') or '?'}), {meta.get('seconds', 0):.0f} s",
        f"- Machine: {mach['cpu']}, {mach['usable_cores']} usable cores ({', '.join(mach.get('cpu_isa', []))}), "
        f"{_f((mach.get('memory_bytes') or 0) / 2**30, 1)} GiB RAM, {mach['os']}, Python {mach['python']}, "
        f"torch threads {mach.get('torch_threads', '?')}"
        + (f", run at niceness {mach['niceness']}" if mach.get("niceness") else ""),
        f"- Nominal fp32 peak: {_f((mach.get('cpu_peak_fp32_flops') or 0) / 1e9, 1)} GFLOP/s "
        f"({mach.get('cpu_peak_basis') or 'unknown'})",
        f"- Load average at start / end: {_f((mach.get('load_average') or [None])[0])} / "
        f"{_f((meta.get('load_average_end') or [None])[0])}"
        + (" — **the machine was shared with other jobs during this run: absolute timings are noisy; the ratios "
           "come from interleaved runs and are the numbers to read**" if meta.get("loaded_machine") else ""),
        "- Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
    ]
    if results.get("errors"):
        lines += ["**Sections that failed:**", ""]
        lines += [f"- `{k}`: {e.splitlines()[-1]}" for k, e in results["errors"].items()] + [""]
    if plot_name:
        lines += [f"![fps by runner and size]({plot_name})", ""]

    inf = results.get("inference")
    if inf:
        lines += ["### Inference only (CPU fp32, real frame crops)", ""]
        rows = [[_short(r["model"]), f"{r['width']}×{r['height']}", r["variant"], r.get("backend", "torch cpu fp32"),
                 r.get("tiles", 1),
                 _f(r["median_s"], 3), _f(r.get("cpu_s_median"), 3), _f(r["fps"], 3), _f(r["input_px_per_s"], 0),
                 _f(r["useful_gflops"], 1),
                 _f(r.get("pct_cpu_peak"), 1)] for r in inf["rows"]]
        lines += _table(["model", "input", "variant", "backend", "tiles", "median s", "CPU s", "fps", "input px/s", "GFLOP/s",
                         "% peak"], rows) + [""]
        lines += ["FLOP/s = fps × FLOPs per input pixel (the model descriptor's `flops_per_input_pixel`: 35.85 M "
                  "x4plus, 11.41 M anime 6B, 1.24 M animevideov3) × pixels; `backend` rows call a backend's `infer` directly, `Upscaler` rows "
                  "(default backend, and `--backend torch`) add tiling/stitching, the finite check and the clamp.", ""]

    peers = results.get("peers")
    if peers:
        lines += ["### Peers: same frames, same weights, same machine, interleaved", ""]
        for s in peers.get("summary", []):
            verdict = verdict_of(s["ours_vs_fastest_peer"])
            lines.append(f"- **{_short(s['model'])} {s['width']}×{s['height']} {s['setting']}: ours is "
                         f"{_f(s['ours_vs_fastest_peer'])}× the fastest peer ({s['fastest_peer']}) — {verdict}** "
                         f"(ratio of medians; best-of-n ratio against the fastest peer by minimum time: "
                         f"{_f(s.get('ours_vs_fastest_peer_best_of_n'))}×)"
                         + (f"; with channels_last on the CPU (diagnostic row; the CPU default since these results): "
                            f"{_f(s['diagnostic_channels_last_vs_fastest_peer'])}×"
                            if s.get("diagnostic_channels_last_vs_fastest_peer") else "")
                         + (f"; ours with `--backend torch` (diagnostic row): "
                            f"{_f(s['diagnostic_torch_vs_fastest_peer'])}×"
                            if s.get("diagnostic_torch_vs_fastest_peer") else "")
                         + (f"; ours vs {s['peer_on_our_graph']}: {_f(s['ours_vs_peer_on_our_graph'])}×"
                            if s.get("ours_vs_peer_on_our_graph") else ""))
        lines.append("")
        for g in peers["groups"]:
            lines += [f"**{_short(g['model'])}, {g['width']}×{g['height']}, {g['setting']}** "
                      f"(speed-up = peer median / `{g['ours']}` median; PSNR against `{g['reference']}`)", ""]
            rows = []
            for r in g["rows"]:
                if not r.get("available", True):
                    rows.append([r["runner"], "unavailable", *["–"] * 8, r["error"]])
                    continue
                st = ", ".join(f"{k}={val}" for k, val in r["settings"].items() if val is not None)
                px = r.get("executed_px_per_frame")
                rows.append([r["runner"], _f(r["median_s"], 3), _f(r["min_s"], 3), _f(r.get("cpu_s_median"), 3),
                             _f(r["fps"], 3),
                             _f(r.get("ours_speedup")), _f(r.get("ours_speedup_best")), "–" if px is None else px,
                             _f(r.get("psnr_vs_ours_db"), 1), _f(r.get("max_abs_diff_vs_ours")), st])
            lines += _table(["runner", "median s", "min s", "CPU s", "fps", "ours speed-up (medians)", "(best-of-n)",
                             "px run/frame", "PSNR vs ours dB", "max |Δ|", "settings"], rows) + [""]
            d = g.get("realesrgan_default_pre_pad")
            if d and "error" not in d:
                lines += [f"RealESRGANer with its default `pre_pad=10` (reflect padding of the bottom/right edges) vs "
                          f"ours: {_f(d['psnr_vs_ours_db'], 1)} dB over the frame, "
                          f"{_f(d['psnr_vs_ours_excluding_bottom_right_band_db'], 1)} dB without the bottom/right "
                          f"{d['band_px']}-px band; with `pre_pad=0` it computes our function.", ""]
            if "our_tiles" in g:
                lines += [f"Tiles per frame: ours {g['our_tiles']} (edge tiles shifted inward, {g['our_blend']} "
                          f"seams), RealESRGANer {g['realesrgan_tiles']} (crop seams); the pixels each runs per "
                          "frame are in the *px run/frame* column.", ""]

    fid = results.get("fidelity")
    if fid:
        lines += ["### Fidelity: tiled vs whole frame (tiling defaults)", ""]
        rows = [[_short(r["model"]), f"{r['width']}×{r['height']}", r["tile"], r["tile_pad"], r["blend"], r["tiles"],
                 _f(r["psnr_tiled_vs_whole_db"], 1), r["max_abs_diff"]] for r in fid["rows"]]
        lines += _table(["model", "input", "tile", "pad", "blend", "tiles", "PSNR dB", "max |Δ|"], rows) + [""]

    e2e = results.get("e2e")
    if e2e:
        lines += ["### End to end (`upscale_video`) vs inference only", ""]
        share = ", ".join(f"{k} {100 * val:.0f} %" for k, val in e2e["stage_share_of_wall"].items())
        lines += _table(["model", "clip", "frames", "e2e fps", "inference-only fps", "ratio", "stage time / wall"],
                        [[_short(e2e["model"]), e2e["clip"], e2e["frames"], _f(e2e["e2e_fps"], 3),
                          _f(e2e["inference_only_fps"], 3), _f(e2e["ratio"], 3), share]]) + [""]
        lines += ["Target: ratio ≥ 0.95 (decode and encode hidden behind inference). Stage times are summed over "
                  "threads, so shares can overlap.", ""]

    mem = results.get("memory")
    if mem:
        lines += ["### Memory: RSS must not grow with video length", "",
                  "Peak RSS sampled during `upscale_video`, each run in a fresh process; allowed growth = a quarter "
                  "of an 8-bit output frame per extra frame (keeping anything frame-sized per frame would exceed "
                  "it), at least 8 MiB.", ""]
        lines += _table(["model", "input", "frames", "peak RSS", "frames", "peak RSS", "growth", "allowed", "bounded",
                         "RSS after run: growth", "GPU peak"],
                        [[_short(mem["model"]), f"{mem['width']}×{mem['height']}", mem["frames_n"],
                          _mib(mem["peak_rss_n_bytes"]), mem["frames_10n"], _mib(mem["peak_rss_10n_bytes"]),
                          _mib(mem["growth_bytes"]), _mib(mem.get("allowed_growth_bytes")),
                          "yes" if mem["bounded"] else "NO",
                          _mib(mem["rss_after_run_10n_bytes"] - mem["rss_after_run_n_bytes"]),
                          _mib(mem["gpu_peak_bytes"]) if mem.get("gpu_peak_bytes") is not None
                          else (mem.get("gpu_note") or "–")]]) + [""]

    ff = results.get("first_frame")
    if ff:
        lines += ["### Time to first frame (fresh process)", ""]
        rows = [[_short(r["model"]), f"{r['width']}×{r['height']}", r.get("backend", "torch"), _f(r["import_s"]),
                 _f(r["load_cold_s"]), _f(r.get("backend_build_cold_s")), _f(r["first_frame_cold_s"]),
                 _f(r["time_to_first_frame_cold_s"]), _f(r["load_warm_s"]), _f(r.get("backend_build_warm_s")),
                 _f(r["first_frame_warm_s"]), _f(r["steady_frame_s"])] for r in ff["rows"]]
        lines += _table(["model", "input", "backend", "import s", "load (cold) s", "backend build (cold) s",
                         "1st frame s (incl. build)", "total cold s", "load (warm) s", "backend build (warm) s",
                         "1st frame (warm) s", "steady frame s"], rows) + [""]
        lines += ["Backend build: for ONNX Runtime, the ONNX export (once per weights and process) and the session; "
                  "for TensorRT, the engine build (cold) or the cached engine's load (warm).", ""]
        lines += [ff["note"] + ".", ""]
    return "\n".join(lines)


def write_markdown(out_dir: Path) -> Path:
    """Regenerate ``BENCHMARKS.md`` from every ``cpu-*.json`` in ``out_dir``."""
    files = sorted(out_dir.glob("cpu-*.json"), key=lambda p: (MODE_ORDER.get(p.stem[4:], 9), p.name))
    parts = ["# esrgan-video benchmarks", "",
             "Generated by `python -m benchmarks.run` (`make bench` = `--quick`, `make bench-full` = `--full`) from "
             "the JSON files beside this page; see `docs/benchmarks.md` for what each number means. "
             "GPU results come from `benchmarks/gpu_check.sh`.", ""]
    for f in files:
        res = json.loads(f.read_text())
        png = f.with_suffix(".png")
        parts.append(markdown(res, plot_name=png.name if png.exists() else None))
    path = out_dir / "BENCHMARKS.md"
    path.write_text("\n".join(parts).rstrip() + "\n")
    return path


def plot(results: dict[str, Any], path: Path) -> dict[str, Any]:
    """fps by runner and input size (peers) and by variant and size (inference only), as a PNG.

    Returns ``{"path": ...}`` or ``{"skipped": reason}`` when matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        return {"skipped": f"matplotlib not installed ({e}); pip install matplotlib"}
    panels = []
    peers = results.get("peers")
    if peers:
        for g in peers["groups"]:
            rows = [r for r in g["rows"] if r.get("available", True)]
            tiled = "our_tiles" in g
            panels.append((f"{_short(g['model'])} {g['width']}×{g['height']} {g['setting']}",
                           [r["runner"] + (f"\n{r['executed_px_per_frame']} px run" if tiled else "") for r in rows],
                           [r["fps"] for r in rows],
                           [OURS if r["peer"] == "ours" else OURS_BACKEND if r["peer"] == "ours-diagnostic"
                            else PEER_DIAGNOSTIC if r["peer"] == "peer-diagnostic" else PEER
                            for r in rows]))
    inf = results.get("inference")
    if inf:
        by_model: dict[str, list[dict[str, Any]]] = {}
        for r in inf["rows"]:
            by_model.setdefault(r["model"], []).append(r)
        for model, rows in by_model.items():
            panels.append((f"inference only, {_short(model)}",
                           [f"{r['width']}×{r['height']}\n{r['variant']}" for r in rows], [r["fps"] for r in rows],
                           [OURS if r["variant"].startswith("Upscaler") else OURS_BACKEND for r in rows]))
    if not panels:
        return {"skipped": "no throughput sections in this run"}
    heights = [0.9 + len(labels) * (0.42 if any("\n" in lb for lb in labels) else 0.28) for _, labels, _, _ in panels]
    top = 0.4  # inches for the figure title
    fig = plt.figure(figsize=(8, sum(heights) + top))
    axes = fig.subplots(len(panels), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, (title, labels, fps, colours) in zip(axes[:, 0], panels):
        ax.barh(range(len(labels)), fps, color=colours)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frames/s (higher is better)", fontsize=8)
        for i, val in enumerate(fps):
            ax.text(val, i, f" {val:.3g}", va="center", fontsize=7)
    meta = results["meta"]
    mach = meta["machine"]
    fig.suptitle(f"esrgan-video CPU {meta['mode']} — {mach['cpu']}, {mach['usable_cores']} cores"
                 + (" (shared, loaded machine)" if meta.get("loaded_machine") else ""), fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - top / (sum(heights) + top)))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return {"path": path.name}


def summary_text(results: dict[str, Any]) -> str:
    """A few lines for the console."""
    out = [f"mode {results['meta']['mode']}, {results['meta'].get('seconds', 0):.0f} s"
           + (" (loaded machine)" if results["meta"].get("loaded_machine") else "")]
    for s in (results.get("peers") or {}).get("summary", []):
        out.append(f"  {s['model']} {s['width']}x{s['height']} {s['setting']}: ours {s['ours_vs_fastest_peer']:.2f}x "
                   f"the fastest peer ({s['fastest_peer']})")
    e2e = results.get("e2e")
    if e2e:
        out.append(f"  e2e / inference-only fps: {e2e['ratio']:.3f}")
    mem = results.get("memory")
    if mem:
        out.append(f"  peak RSS {mem['frames_n']} vs {mem['frames_10n']} frames: "
                   f"growth {mem['growth_bytes'] / 2**20:.1f} MiB")
    for k, e in results.get("errors", {}).items():
        out.append(f"  FAILED {k}: {e.splitlines()[-1]}")
    return "\n".join(out)
