"""Peer adapters: the tools a user would pick instead of esrgan-video, behind one call signature.

Every runner takes one H x W x 3 uint8 RGB frame and returns the (4x) upscaled H' x W' x 3 uint8 RGB
frame, so each one pays for its own uint8 ↔ float conversion, as it would in use. All of them are
built from the same :class:`~esrgan_video.arch.RRDBNet` (the same weights) and run fp32 on the CPU:

* ``ours``: :class:`esrgan_video.Upscaler` with its defaults on this CPU (``--backend auto``: ONNX Runtime
  when installed, as in a default install), optionally tiled; ``ours --backend torch`` beside it.
* ``spandrel``: spandrel's ``ModelLoader`` on our state dict, called the way its README shows
  (``torch.no_grad()``, float [0, 1] in, clamp out).
* ``realesrgan``: the official ``RealESRGANer`` (PyPI ``realesrgan`` 0.3.0 on ``basicsr`` 1.4.2), with
  and without its ``tile`` option, fed a ``.pth`` holding our state dict under ``params_ema``. It
  reflect-pads the frame by ``pre_pad`` (default 10) on the bottom/right before inference; with
  ``pre_pad=0`` it computes exactly our function. basicsr imports
  ``torchvision.transforms.functional_tensor`` (removed from torchvision 0.17+): :func:`shim_functional_tensor`
  registers that module name in ``sys.modules`` (site-packages are not touched).
* ``vsmlrt-ort``: vs-mlrt's ONNX Runtime plugin (``core.ort.Model``, CPU provider, fp32) on our fp32
  ONNX export with the frame's static shape.

A peer that cannot be imported or set up raises :class:`PeerUnavailable` with the exact error line,
which the harness records instead of dropping the peer.
"""

from __future__ import annotations

import contextlib
import io
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class PeerUnavailable(RuntimeError):
    """A peer could not be installed, imported or set up; the message is the reason, recorded as is."""


@dataclass
class Runner:
    """One way of upscaling a uint8 RGB frame, with the settings that describe it."""

    name: str
    """Short unique label, e.g. ``realesrgan tile=32``."""
    peer: str
    """Which tool: ``ours``, ``spandrel``, ``realesrgan``, ``vsmlrt-ort``."""
    fn: Callable[[np.ndarray], np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    close: Callable[[], None] = lambda: None
    impl: Any = None
    """The peer's own object (Upscaler, spandrel descriptor, RealESRGANer, VapourSynth node)."""

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        return self.fn(frame)


def error_line(e: BaseException) -> str:
    """``Type: first line of the message`` (what a results file records for a failed peer)."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Float [0, 1] → uint8 with round-half-to-even, clipped (the same rounding for every peer)."""
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# ours


def ours(model: torch.nn.Module, *, tile: int = 0, tile_pad: int | None = None, label: str | None = None,
         backend: str = "auto") -> Runner:
    """esrgan-video's Upscaler on the CPU with its defaults (``backend="auto"``: what a user gets), fp32;
    ``tile=0`` is the whole frame. The backend auto picked is recorded in the settings after the first call."""
    from esrgan_video.upscaler import Upscaler

    up = Upscaler(model, tile=tile, tile_pad=tile_pad, backend=backend, device="cpu")
    settings = {"tile": tile, "tile_pad": up.config.tile_pad if tile else None, "backend": backend}

    def run(img: np.ndarray) -> np.ndarray:
        out = up.upscale(img)
        info = up.backend_info
        settings["backend"] = f"{backend} → {info.name} cpu fp32" if backend == "auto" else f"{info.name} cpu fp32"
        return out

    name = label or ("ours" if not tile else f"ours tile={tile}")
    peer = "ours" if backend == "auto" else "ours-diagnostic"
    return Runner(name=name, peer=peer, fn=run, settings=settings, close=up.close, impl=up)


def ours_torch(model: torch.nn.Module) -> Runner:
    """Diagnostic: our Upscaler with ``--backend torch`` (channels_last fp32), whole frame: the PyTorch path
    beside the default, so the table shows what ONNX Runtime adds on this CPU."""
    return ours(model, backend="torch", label="ours --backend torch (diagnostic)")


# --------------------------------------------------------------------------------------------
# spandrel


def spandrel_plain(model: torch.nn.Module) -> Runner:
    """spandrel + plain PyTorch: what a Python user would write."""
    try:
        import spandrel
    except ImportError as e:
        raise PeerUnavailable(error_line(e)) from e
    try:
        desc = spandrel.ModelLoader(device="cpu").load_from_state_dict(
            {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
        )
    except Exception as e:  # noqa: BLE001 - any loader failure is the recorded reason
        raise PeerUnavailable(error_line(e)) from e
    desc.eval()

    def run(img: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(img).permute(2, 0, 1).unsqueeze(0).float() / 255.0
        with torch.no_grad():
            y = desc(x)
        return to_uint8(y[0].permute(1, 2, 0).numpy())

    arch = f"{desc.architecture.name}" if hasattr(desc, "architecture") else type(desc.model).__name__
    return Runner(name="spandrel", peer="spandrel", fn=run,
                  settings={"spandrel": spandrel.__version__, "arch": arch, "grad": "torch.no_grad"}, impl=desc)


# --------------------------------------------------------------------------------------------
# official Real-ESRGAN


FUNCTIONAL_TENSOR = "torchvision.transforms.functional_tensor"


def shim_functional_tensor() -> bool:
    """Register ``torchvision.transforms.functional_tensor`` (gone since torchvision 0.17) for basicsr 1.4.2.

    basicsr only imports ``rgb_to_grayscale`` from it, which lives on in ``torchvision.transforms.functional``.
    Returns True when the shim was installed, False when the real module exists or a shim is already there.
    """
    if FUNCTIONAL_TENSOR in sys.modules:
        return False
    try:
        __import__(FUNCTIONAL_TENSOR)
        return False
    except ImportError:
        pass
    from torchvision.transforms import functional as tvf

    shim = types.ModuleType(FUNCTIONAL_TENSOR)
    shim.__doc__ = "esrgan-video benchmark shim: rgb_to_grayscale from torchvision.transforms.functional"
    shim.rgb_to_grayscale = tvf.rgb_to_grayscale  # type: ignore[attr-defined]
    sys.modules[FUNCTIONAL_TENSOR] = shim
    return True


def import_realesrgan() -> tuple[Any, Any]:
    """(RealESRGANer, basicsr RRDBNet) with the torchvision shim in place; PeerUnavailable when missing."""
    shim_functional_tensor()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            from basicsr.archs.rrdbnet_arch import RRDBNet as BasicsrRRDBNet
            from realesrgan import RealESRGANer
    except Exception as e:  # noqa: BLE001 - ImportError, or basicsr's own import-time failures
        raise PeerUnavailable(
            f"{error_line(e)} (install: pip install --no-build-isolation basicsr==1.4.2 realesrgan==0.3.0)"
        ) from e
    return RealESRGANer, BasicsrRRDBNet


def save_params_ema(model: torch.nn.Module, path: Path) -> Path:
    """Save ``model``'s fp32 state dict as ``{"params_ema": ...}``, the layout RealESRGANer loads."""
    sd = {k: v.detach().float().cpu().clone() for k, v in model.state_dict().items()}
    torch.save({"params_ema": sd}, path)
    return path


def realesrgan(
    model: torch.nn.Module, workdir: Path, *, tile: int = 0, tile_pad: int = 10, pre_pad: int = 0,
    label: str | None = None,
) -> Runner:
    """The official ``RealESRGANer`` (fp32, CPU) on our weights; BGR in/out is handled here.

    ``pre_pad=0`` (default here) makes it compute our function; its own default is 10 (reflect padding).
    """
    RealESRGANer, BasicsrRRDBNet = import_realesrgan()
    p = model.params
    if p.unshuffle != 1:
        raise PeerUnavailable(f"RealESRGANer adapter covers x4/x8 RRDB models here, got scale {p.scale}")
    net = BasicsrRRDBNet(num_in_ch=p.in_nc, num_out_ch=p.out_nc, num_feat=p.nf, num_block=p.nb,
                         num_grow_ch=p.gc, scale=p.scale)
    pth = save_params_ema(model, Path(workdir) / f"realesrgan_{p.nb}b_{id(model):x}.pth")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            up = RealESRGANer(scale=p.scale, model_path=str(pth), model=net, tile=tile, tile_pad=tile_pad,
                              pre_pad=pre_pad, half=False, device=torch.device("cpu"))
    except Exception as e:  # noqa: BLE001
        raise PeerUnavailable(error_line(e)) from e

    def run(img: np.ndarray) -> np.ndarray:
        sink = io.StringIO()  # tile_process prints one line per tile
        with contextlib.redirect_stdout(sink):
            out, _ = up.enhance(np.ascontiguousarray(img[..., ::-1]), outscale=p.scale)
        return np.ascontiguousarray(out[..., ::-1])

    name = label or ("realesrgan" if not tile else f"realesrgan tile={tile}")
    return Runner(name=name, peer="realesrgan", fn=run,
                  settings={"tile": tile, "tile_pad": tile_pad if tile else None, "pre_pad": pre_pad, "half": False},
                  impl=up)


# --------------------------------------------------------------------------------------------
# vs-mlrt ONNX Runtime plugin


def vsmlrt_ort(model: torch.nn.Module, workdir: Path, *, height: int, width: int, label: str | None = None,
               scale_as_conv: bool = False) -> Runner:
    """vs-mlrt's ``core.ort.Model`` (CPU provider, fp32) on an fp32 ONNX export at the frame's shape.

    By default the plain export (the graph a vs-mlrt user has: RRDB scaling as Mul, like the official
    Real-ESRGAN export). ``scale_as_conv=True`` feeds it the graph our ONNX Runtime backend runs instead
    (a diagnostic row: it shows how much of our lead is the graph rather than the runtime)."""
    try:
        import vapoursynth as vs
    except ImportError as e:
        raise PeerUnavailable(error_line(e)) from e
    core = vs.core
    if not hasattr(core, "ort"):
        raise PeerUnavailable(
            "vapoursynth has no 'ort' namespace: vs-mlrt's ONNX Runtime plugin is not installed "
            "(pip install vapoursynth-mlrt-ort)"
        )
    from esrgan_video.runtime.onnx_export import ExportSpec, export_onnx

    p = model.params
    onnx_path = Path(workdir) / f"rrdb_{p.nb}b_{height}x{width}_fp32{'_convscale' if scale_as_conv else ''}.onnx"
    if not onnx_path.exists():
        export_onnx(model, ExportSpec(tile_shape=(height, width), batch=1, precision="fp32",
                                      scale_as_conv=scale_as_conv), onnx_path, device="cpu")
    state: dict[str, np.ndarray] = {}

    def fill(n: int, f: "vs.VideoFrame") -> "vs.VideoFrame":
        fout = f.copy()
        for i in range(3):
            np.copyto(np.asarray(fout[i]), state["planes"][i])
        return fout

    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=1 << 30, keep=False)
    src = core.std.ModifyFrame(blank, blank, fill)
    try:
        node = core.ort.Model(src, network_path=str(onnx_path), provider="CPU", fp16=False, num_streams=1)
    except vs.Error as e:
        raise PeerUnavailable(error_line(e)) from e
    counter = iter(range(1 << 30))

    def run(img: np.ndarray) -> np.ndarray:
        if img.shape[:2] != (height, width):
            raise ValueError(f"vsmlrt-ort runner was built for {height}x{width}, got {img.shape[:2]}")
        state["planes"] = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0
        f = node.get_frame(next(counter))  # a fresh index every call: no frame-cache hits
        out = np.stack([np.asarray(f[i]) for i in range(3)], axis=-1)
        return to_uint8(out)

    try:
        version = core.ort.Version()
        ver = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in version.items()}
    except (AttributeError, vs.Error):
        ver = {}
    return Runner(name=label or "vsmlrt-ort", peer="peer-diagnostic" if scale_as_conv else "vsmlrt-ort", fn=run,
                  settings={"provider": "CPU", "fp16": False, "onnx": onnx_path.name,
                            "plugin": str(ver.get("version", "")),
                            "onnxruntime": str(ver.get("onnxruntime_version", ""))},
                  impl=node)
