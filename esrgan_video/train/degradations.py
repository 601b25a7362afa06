"""Degradations: how a low-resolution training input is made from a high-resolution patch or frame.

Each degradation is data, a frozen dataclass whose fields a config file can override
(``[degradation]`` in the TOML), and the maths are pure functions of tensors and a seeded generator:

- :class:`Bicubic` — the ESRGAN paper's setting: bicubic ×1/s with antialiasing
  (``F.interpolate(mode="bicubic", antialias=True)``, like MATLAB's ``imresize``), rounded to 8 bits.
- :class:`RealESRGAN` — Real-ESRGAN's second-order degradation with its published defaults (numbers from
  ``options/train_realesrgan_x4plus.yml``, ``realesrgan/data/realesrgan_dataset.py``,
  ``realesrgan/models/realesrgan_model.py`` and BasicSR's ``basicsr/data/degradations.py``).
  Kernels are sampled on the CPU from a per-sample seed; blur, resize, noise and the JPEG of
  :mod:`esrgan_video.train.jpeg` run on the patch's device. Real-ESRGAN draws the resize type, scale and mode
  once per batch; here every draw is per sample, so a sample's degradation does not depend on its batch-mates
  (which a DDP split of the batch and the shuffling pool need).
- :class:`Video` — downscale whole frames, encode runs of ``gop`` consecutive frames with a real codec
  through PyAV (x264/x265, CRF drawn per run, 4:2:0, limited range, BT.709) and decode them again, so the
  model sees real P/B-frame artefacts and chroma loss. It runs once over the frames before training (a cached
  pass; :mod:`esrgan_video.train.data`), patches are cut from the decoded result.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields, replace
from typing import ClassVar

import torch
from torch.nn import functional as F


# --------------------------------------------------------------------------- the recipes (data)


@dataclass(frozen=True, kw_only=True)
class Bicubic:
    """Bicubic ×1/scale with antialiasing, rounded to 8 bits (the ESRGAN paper's data)."""

    name: ClassVar[str] = "bicubic"
    frame_level: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class Stage:
    """One order of Real-ESRGAN's degradation: blur, resize, noise, JPEG (the second order runs the same steps on
    the first's output, with its own numbers)."""

    sinc_prob: float = 0.1
    """Chance that the blur kernel is a sinc instead of one of ``kernel_list``."""
    blur_sigma: tuple[float, float] = (0.2, 3.0)
    resize_prob: tuple[float, float, float] = (0.2, 0.7, 0.1)
    """Up, down, keep."""
    resize_range: tuple[float, float] = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    """Gaussian noise with this chance, else Poisson noise."""
    noise_range: tuple[float, float] = (1.0, 30.0)
    poisson_scale_range: tuple[float, float] = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple[float, float] = (30.0, 95.0)


SECOND_STAGE = Stage(blur_sigma=(0.2, 1.5), resize_prob=(0.3, 0.4, 0.3), resize_range=(0.3, 1.2),
                     noise_range=(1.0, 25.0), poisson_scale_range=(0.05, 2.5))
"""Real-ESRGAN's second-order numbers (the rest as the first order's)."""


@dataclass(frozen=True, kw_only=True)
class RealESRGAN:
    """Real-ESRGAN's second-order degradation; defaults are its published x4plus settings."""

    name: ClassVar[str] = "realesrgan"
    frame_level: ClassVar[bool] = False
    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    """Kernel sizes drawn uniformly; every kernel is zero-padded to 21×21."""
    kernel_list: tuple[str, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso",
                                    "plateau_aniso")
    kernel_prob: tuple[float, ...] = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
    betag_range: tuple[float, float] = (0.5, 4.0)
    betap_range: tuple[float, float] = (1.0, 2.0)
    first: Stage = Stage()
    """The first order (its blur always runs)."""
    second_blur_prob: float = 0.8
    """Chance that the second order blurs."""
    second: Stage = SECOND_STAGE
    """The second order (a TOML config overrides its fields in ``[degradation.second]``)."""
    final_sinc_prob: float = 0.8
    pool_size: int = 180
    """Real-ESRGAN's shuffling pool of training pairs (rounded down to a multiple of the batch)."""


@dataclass(frozen=True, kw_only=True)
class Video:
    """Downscale, then a real codec round trip on runs of ``gop`` whole frames."""

    name: ClassVar[str] = "video"
    frame_level: ClassVar[bool] = True
    codec: str = "libx264"
    """``libx264`` or ``libx265``."""
    crf_range: tuple[int, int] = (18, 32)
    """CRF drawn uniformly per run of frames (inclusive)."""
    preset: str = "veryfast"
    gop: int = 8
    """Frames per encoded run (a GOP: one I frame, then P/B frames)."""
    bframes: int = 2


DEGRADATIONS = {cls.name: cls for cls in (Bicubic, RealESRGAN, Video)}


def make_degradation(name: str, overrides: dict | None = None):
    """The degradation ``name`` with ``overrides`` (field → value, e.g. from a TOML table) applied.

    Lists become tuples; unknown names or fields raise ValueError naming what is allowed.
    """
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {name!r}: expected one of {', '.join(DEGRADATIONS)}")
    cls = DEGRADATIONS[name]
    overrides = dict(overrides or {})
    known = {f.name for f in fields(cls)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"degradation {name} has no field {bad[0]!r} (fields: {', '.join(sorted(known)) or 'none'})")
    return cls(**{k: _field_value(cls, k, v) for k, v in overrides.items()})


def _field_value(cls, key: str, value):
    """A config value for field ``key`` of ``cls``: lists become tuples, a table for a :class:`Stage` field
    overrides that stage's defaults."""
    default = next(f.default for f in fields(cls) if f.name == key)
    if isinstance(default, Stage):
        if not isinstance(value, dict):
            raise ValueError(f"degradation {cls.name} field {key!r} is a table of stage fields, got {value!r}")
        bad = sorted(set(value) - {f.name for f in fields(Stage)})
        if bad:
            raise ValueError(f"degradation {cls.name} stage {key!r} has no field {bad[0]!r} "
                             f"(fields: {', '.join(f.name for f in fields(Stage))})")
        return replace(default, **{k: _field_value(Stage, k, v) for k, v in value.items()})
    return tuple(value) if isinstance(value, list) else value


def degradation_dict(d) -> dict:
    """The fields of a degradation as plain JSON-ready data, with its name."""
    return {"name": d.name} | _plain(d)


def _plain(d) -> dict:
    out = {}
    for f in fields(d):
        v = getattr(d, f.name)
        out[f.name] = _plain(v) if isinstance(v, Stage) else list(v) if isinstance(v, tuple) else v
    return out


# --------------------------------------------------------------------------- shared maths


def round8(x: torch.Tensor) -> torch.Tensor:
    """Clamp to [0, 1] and round to 8-bit codes."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def bicubic_down(hr: torch.Tensor, scale: int) -> torch.Tensor:
    """``hr`` (N×3×H×W, H and W multiples of ``scale``) → bicubic ×1/scale with antialiasing, rounded to 8 bits."""
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f"bicubic_down: {w}x{h} is not a multiple of the scale {scale}")
    if scale == 1:
        return round8(hr)
    lr = F.interpolate(hr.float(), size=(h // scale, w // scale), mode="bicubic", antialias=True, align_corners=False)
    return round8(lr).to(hr.dtype)


@functools.lru_cache(maxsize=16)
def usm_kernel(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The unsharp mask's normalised isotropic ``size``×``size`` Gaussian (built in float64 on the CPU, then cast
    and moved), one tensor per (size, sigma, dtype, device): the mask runs on every training step, and rebuilding
    its 51×51 kernel each time cost the arithmetic and, on a GPU, a host-to-device copy a step. Shared between
    calls: never modify it in place."""
    k1 = torch.exp(-((torch.arange(size, dtype=torch.float64) - (size - 1) / 2) ** 2) / (2 * sigma * sigma))
    k1 = k1 / k1.sum()
    return (k1[:, None] * k1[None, :]).to(device, dtype)


def usm_sharp(img: torch.Tensor, *, weight: float = 0.5, radius: int = 50, threshold: float = 10) -> torch.Tensor:
    """Real-ESRGAN's unsharp mask for its targets (``USMSharp``: Gaussian 51×51, σ 8, soft threshold 10/255)."""
    if radius % 2 == 0:
        radius += 1
    sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8  # OpenCV's getGaussianKernel(ksize, 0)
    kernel = usm_kernel(radius, sigma, torch.float32, img.device)
    blur = filter2d(img, kernel.expand(img.shape[0], -1, -1))
    residual = img - blur
    mask = (residual.abs() * 255 > threshold).float()
    soft = filter2d(mask, kernel.expand(img.shape[0], -1, -1))
    sharp = (img + weight * residual).clamp(0, 1)
    return soft * sharp + (1 - soft) * img


def filter2d(img: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve each image (N×C×H×W) with its own kernel (N×k×k), reflect padding (BasicSR's filter2D)."""
    n, c, h, w = img.shape
    k = kernels.shape[-1]
    # reflect like BasicSR; an image no larger than the kernel radius (a small patch shrunk by the random
    # resize) cannot be reflected, so it is padded by replication instead
    x = F.pad(img.float(), (k // 2,) * 4, mode="reflect" if min(h, w) > k // 2 else "replicate")
    x = x.reshape(1, n * c, h + k - 1, w + k - 1)
    weight = kernels.to(x).repeat_interleave(c, dim=0).unsqueeze(1)
    return F.conv2d(x, weight, groups=n * c).view(n, c, h, w)


# --------------------------------------------------------------------------- Real-ESRGAN kernels (CPU, float64)


class Draw:
    """Random draws from one seeded torch generator (CPU), so a sample's degradation is a function of its seed."""

    def __init__(self, seed: int) -> None:
        self.g = torch.Generator().manual_seed(int(seed))

    def uniform(self, lo: float, hi: float) -> float:
        return float(lo + (hi - lo) * torch.rand((), generator=self.g, dtype=torch.float64))

    def chance(self, p: float) -> bool:
        return float(torch.rand((), generator=self.g, dtype=torch.float64)) < p

    def choice(self, items, probs=None):
        if probs is None:
            return items[int(torch.randint(len(items), (), generator=self.g))]
        p = torch.tensor(probs, dtype=torch.float64)
        return items[int(torch.multinomial(p / p.sum(), 1, generator=self.g))]

    def seed(self) -> int:
        return int(torch.randint(2**62, (), generator=self.g))


def _grid(size: int) -> torch.Tensor:
    ax = torch.arange(-(size // 2), size // 2 + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return torch.stack([xx, yy], dim=-1)  # size×size×2


def _quadratic(size: int, sig_x: float, sig_y: float, theta: float) -> torch.Tensor:
    """xᵀ Σ⁻¹ x over the grid, Σ = R diag(σx², σy²) Rᵀ."""
    c, s = math.cos(theta), math.sin(theta)
    rot = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    sigma = rot @ torch.diag(torch.tensor([sig_x**2, sig_y**2], dtype=torch.float64)) @ rot.T
    inv = torch.linalg.inv(sigma)
    g = _grid(size)
    return torch.einsum("hwi,ij,hwj->hw", g, inv, g)


def gaussian_kernel(size: int, sig_x: float, sig_y: float, theta: float, beta: float = 1.0,
                    kind: str = "gaussian") -> torch.Tensor:
    """Bivariate Gaussian (``beta`` 1), generalised Gaussian (exp(−½ q^β)) or plateau (1 / (q^β + 1)), normalised."""
    q = _quadratic(size, sig_x, sig_y, theta)
    if kind == "gaussian":
        k = torch.exp(-0.5 * q)
    elif kind == "generalized":
        k = torch.exp(-0.5 * q.pow(beta))
    elif kind == "plateau":
        k = 1.0 / (q.pow(beta) + 1.0)
    else:
        raise ValueError(f"unknown kernel kind {kind!r}")
    return k / k.sum()


def sinc_kernel(cutoff: float, size: int, pad_to: int = 0) -> torch.Tensor:
    """2-D circular low-pass (sinc) kernel of ``cutoff`` (radians), normalised, zero-padded to ``pad_to``."""
    g = _grid(size)
    r = torch.sqrt((g**2).sum(-1))
    with torch.no_grad():
        safe = torch.where(r == 0, torch.ones_like(r), r)
        k = cutoff * torch.special.bessel_j1(cutoff * safe) / (2 * math.pi * safe)
        k = torch.where(r == 0, torch.full_like(r, cutoff**2 / (4 * math.pi)), k)
    k = k / k.sum()
    return pad_kernel(k, pad_to) if pad_to else k


def pad_kernel(k: torch.Tensor, size: int) -> torch.Tensor:
    p = (size - k.shape[-1]) // 2
    return F.pad(k, (p, p, p, p)) if p > 0 else k


def random_blur_kernel(d: Draw, cfg: RealESRGAN, stage: Stage) -> torch.Tensor:
    """One blur kernel (21×21) of ``stage`` (``cfg.first`` or ``cfg.second``), as Real-ESRGAN's dataset draws it."""
    size = d.choice(cfg.kernel_sizes)
    pad = max(cfg.kernel_sizes)
    if d.chance(stage.sinc_prob):
        cutoff = d.uniform(math.pi / 3, math.pi) if size < 13 else d.uniform(math.pi / 5, math.pi)
        return sinc_kernel(cutoff, size, pad)
    sig = stage.blur_sigma
    kind = d.choice(cfg.kernel_list, cfg.kernel_prob)
    sx = d.uniform(*sig)
    iso = kind.endswith("_iso") or kind == "iso"
    sy, theta = (sx, 0.0) if iso else (d.uniform(*sig), d.uniform(-math.pi, math.pi))
    beta = 1.0
    family = "gaussian"
    if kind.startswith("generalized"):
        family = "generalized"
        beta = d.uniform(cfg.betag_range[0], 1) if d.chance(0.5) else d.uniform(1, cfg.betag_range[1])
    elif kind.startswith("plateau"):
        family = "plateau"
        beta = d.uniform(cfg.betap_range[0], 1) if d.chance(0.5) else d.uniform(1, cfg.betap_range[1])
    return pad_kernel(gaussian_kernel(size, sx, sy, theta, beta, family), pad)


def final_sinc_kernel(d: Draw, cfg: RealESRGAN) -> torch.Tensor:
    """The final sinc (probability ``final_sinc_prob``) or an identity pulse, 21×21."""
    pad = max(cfg.kernel_sizes)
    if d.chance(cfg.final_sinc_prob):
        return sinc_kernel(d.uniform(math.pi / 3, math.pi), d.choice(cfg.kernel_sizes), pad)
    pulse = torch.zeros(pad, pad, dtype=torch.float64)
    pulse[pad // 2, pad // 2] = 1
    return pulse


# --------------------------------------------------------------------------- Real-ESRGAN pipeline (per sample)


def _add_noise(x: torch.Tensor, d: Draw, stage: Stage) -> torch.Tensor:
    g = torch.Generator(device=x.device).manual_seed(d.seed())
    gray = d.chance(stage.gray_noise_prob)
    if d.chance(stage.gaussian_noise_prob):
        s = d.uniform(*stage.noise_range) / 255.0
        shape = (1, 1, *x.shape[-2:]) if gray else tuple(x.shape)
        noise = torch.randn(shape, generator=g, device=x.device) * s
    else:
        scale = d.uniform(*stage.poisson_scale_range)
        if gray:
            src = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
        else:
            src = x
        src = round8(src)
        vals = 2 ** math.ceil(math.log2(max(2, len(torch.unique(src)))))
        noise = (torch.poisson(src * vals, generator=g) / vals - src) * scale
    return (x + noise).clamp(0, 1)


def _resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    size = (max(1, size[0]), max(1, size[1]))
    if mode == "area":
        return F.interpolate(x, size=size, mode="area")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)


RESIZE_MODES = ("area", "bilinear", "bicubic")


def _resize_and_noise(x: torch.Tensor, d: Draw, stage: Stage, size: tuple[float, float]) -> torch.Tensor:
    """One order's random resize of ``x`` around ``size`` (up, down or kept, by ``stage.resize_prob``) and noise."""
    kind = d.choice(("up", "down", "keep"), stage.resize_prob)
    lo, hi = stage.resize_range
    s = d.uniform(1, hi) if kind == "up" else d.uniform(lo, 1) if kind == "down" else 1.0
    x = _resize(x, (int(size[0] * s), int(size[1] * s)), d.choice(RESIZE_MODES))
    return _add_noise(x, d, stage)


def realesrgan_degrade(hr: torch.Tensor, scale: int, cfg: RealESRGAN, seed: int) -> torch.Tensor:
    """One sample (1×3×H×W in [0, 1], H and W multiples of ``scale``) through the second-order degradation;
    returns 1×3×(H/scale)×(W/scale), rounded to 8 bits. A pure function of its arguments."""
    from .jpeg import jpeg

    d = Draw(seed)
    h, w = hr.shape[-2:]
    k1 = random_blur_kernel(d, cfg, cfg.first)
    k2 = random_blur_kernel(d, cfg, cfg.second)
    ks = final_sinc_kernel(d, cfg)
    x = filter2d(hr.float(), k1.unsqueeze(0).float())
    x = _resize_and_noise(x, d, cfg.first, (h, w))
    x = jpeg(x.clamp(0, 1), d.uniform(*cfg.first.jpeg_range))
    if d.chance(cfg.second_blur_prob):
        x = filter2d(x, k2.unsqueeze(0).float())
    x = _resize_and_noise(x, d, cfg.second, (h / scale, w / scale))
    target = (h // scale, w // scale)
    quality = d.uniform(*cfg.second.jpeg_range)
    if d.chance(0.5):
        x = _resize(x, target, d.choice(RESIZE_MODES))
        x = filter2d(x, ks.unsqueeze(0).float())
        x = jpeg(x.clamp(0, 1), quality)
    else:
        x = jpeg(x.clamp(0, 1), quality)
        x = _resize(x, target, d.choice(RESIZE_MODES))
        x = filter2d(x, ks.unsqueeze(0).float())
    return round8(x)


def degrade_batch(hr: torch.Tensor, scale: int, cfg, seeds: torch.Tensor | list[int]) -> torch.Tensor:
    """Patch-level degradation of a batch: bicubic for :class:`Bicubic`, one seeded Real-ESRGAN pass per sample
    for :class:`RealESRGAN`. (:class:`Video` is frame-level and runs before training.)"""
    if isinstance(cfg, Bicubic):
        return bicubic_down(hr, scale)
    if isinstance(cfg, RealESRGAN):
        seeds = [int(s) for s in seeds]
        return torch.cat([realesrgan_degrade(hr[i:i + 1], scale, cfg, seeds[i]) for i in range(hr.shape[0])])
    raise ValueError(f"degradation {cfg.name} is frame-level, not applied to patches")


# --------------------------------------------------------------------------- video (PyAV, CPU data workers)


X265_MIN_SIDE = 64
"""libx265 round trips run on frames at least this wide and high (one CTU), padded when smaller."""


def video_roundtrip(lr_frames: torch.Tensor, cfg: Video, crf: int) -> torch.Tensor:
    """Encode ``lr_frames`` (N×3×h×w float in [0, 1], even h and w) as one run with ``cfg.codec`` at ``crf``
    (4:2:0, limited range, BT.709) and decode them again (``video.codec_roundtrip``), converting with the
    project's colour code both ways; same shape out."""
    from ..frames.color import ColorSpec
    from ..frames.pixel_formats import pixel_format
    from ..frames.transform import FrameFormat, FrameTransform
    from ..video.codec_roundtrip import codec_round_trip

    n, _, h, w = lr_frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"video degradation needs even frame sizes for 4:2:0, got {w}x{h}")
    if cfg.codec == "libx265" and (w < X265_MIN_SIDE or h < X265_MIN_SIDE):
        # x265 (4.3, PyAV's build) corrupts its heap on some frames narrower than one 64-px CTU (40 or 48 wide:
        # SIGSEGV/SIGABRT, content-dependent): encode the frames edge-padded to a CTU, and cut the padding off
        padded = F.pad(lr_frames, (0, max(0, X265_MIN_SIDE - w), 0, max(0, X265_MIN_SIDE - h)), mode="replicate")
        return video_roundtrip(padded, cfg, crf)[:, :, :h, :w]
    fmt = pixel_format("yuv420p")
    spec = ColorSpec(matrix=1, primaries=1, transfer=1, full_range=False, chroma_location="left").resolved(w, h, fmt)
    opts = {"crf": str(int(crf)), "preset": cfg.preset, "g": str(cfg.gop), "bf": str(cfg.bframes)}
    if cfg.codec == "libx264":
        opts["threads"] = "1"
    else:
        opts["x265-params"] = f"log-level=error:keyint={cfg.gop}:min-keyint=1:bframes={cfg.bframes}:pools=1"
    rgb, yuv = FrameFormat.float_rgb(), FrameFormat(fmt, spec)
    to_yuv, to_rgb = FrameTransform(None, src=rgb, dst=yuv), FrameTransform(None, src=yuv, dst=rgb)
    planes = [[p.numpy() for p in to_yuv(list(frame.float()))] for frame in lr_frames]
    decoded = codec_round_trip(planes, codec=cfg.codec, width=w, height=h, pix_fmt="yuv420p", options=opts)
    return torch.stack([torch.stack(to_rgb([torch.from_numpy(p) for p in frame])) for frame in decoded])


def video_degrade(hr_frames: torch.Tensor, scale: int, cfg: Video, seed: int) -> torch.Tensor:
    """Consecutive HR frames (N×3×H×W, uint8 or float) → degraded LR frames (uint8), in runs of ``cfg.gop``:
    bicubic ×1/scale, then a codec round trip at a CRF drawn per run from ``seed``."""
    d = Draw(seed)
    out = []
    for start in range(0, hr_frames.shape[0], cfg.gop):
        run = hr_frames[start:start + cfg.gop]
        hr = run.float() / 255.0 if run.dtype == torch.uint8 else run.float()
        lr = bicubic_down(hr, scale)
        crf = int(round(d.uniform(cfg.crf_range[0] - 0.5, cfg.crf_range[1] + 0.5)))
        crf = min(max(crf, cfg.crf_range[0]), cfg.crf_range[1])
        out.append(torch.round(video_roundtrip(lr, cfg, crf) * 255).to(torch.uint8))
    return torch.cat(out)


__all__ = [
    "Bicubic", "DEGRADATIONS", "RealESRGAN", "Stage", "Video", "bicubic_down", "degrade_batch", "degradation_dict",
    "filter2d", "make_degradation", "realesrgan_degrade", "round8", "usm_kernel", "usm_sharp", "video_degrade",
    "video_roundtrip",
]
