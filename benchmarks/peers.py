"""Peer adapters: the tools a user would pick instead of esrgan-video, behind one call signature.

Every runner takes one H x W x 3 uint8 RGB frame and returns the (4x) upscaled H' x W' x 3 uint8 RGB
frame, so each one pays for its own uint8 ↔ float conversion, as it would in use. All of them are
built from the same :class:`~esrgan_video.arch.RRDBNet` (the same weights) and run fp32 on the CPU by default;
``device``/``half`` (``provider``/``fp16`` for vs-mlrt) put them on a GPU for ``benchmarks/gpu_bench.py``:

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
  ONNX export with the frame's static shape (``provider="CUDA", fp16=True`` on a GPU).
* ``pytorch`` (GPU benchmark): plain PyTorch, what a Python user writes (``model.half().cuda().eval()``,
  ``torch.no_grad()``, NCHW), with ``torch.backends.cudnn.benchmark`` as the user left it (off) or set (on).
* ``vsmlrt-trt`` (GPU benchmark): vs-mlrt's TensorRT plugin (``core.trt.Model``) on an engine built from our
  plain ONNX export (fp32 I/O, fp16 inside) with the ``tensorrt`` Python package.

On CUDA every runner returns its frame on the host, so a timed call includes the device's work.

A peer that cannot be imported or set up raises :class:`PeerUnavailable` with the exact error line,
which the harness records instead of dropping the peer.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import io
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esrgan_video.models.descriptor import describe


def _graph_stem(model: torch.nn.Module) -> str:
    """A file-name stem that tells the benchmarked networks apart (architecture, size, weights)."""
    from esrgan_video.models.loading import state_dict_sha256

    d = describe(model)
    p = d.hyperparameters
    size = f"{p.nb}b" if d.architecture == "ESRGAN" else f"{p.num_conv}c"
    return f"{d.architecture.lower()}_{size}_x{d.scale}_{state_dict_sha256(model.state_dict())[:8]}"


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


PRECISION_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}


def frame_tensor(img: np.ndarray, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """H x W x 3 uint8 RGB → 1 x 3 x H x W in [0, 1] on ``device`` in ``dtype``.

    The uint8 frame is copied to the device first (a quarter of the bytes of float), divided there in fp32,
    then cast: the conversion a careful PyTorch user writes, the same for every torch-based peer."""
    t = torch.from_numpy(np.ascontiguousarray(img)).to(device)
    return t.permute(2, 0, 1).unsqueeze(0).float().div_(255.0).to(dtype)


def frame_array(y: torch.Tensor) -> np.ndarray:
    """1 x 3 x H x W float in [0, 1] → H x W x 3 uint8 RGB, rounded half to even and clipped where ``y`` lives
    (on a GPU, before the copy to the host), which gives the same values as :func:`to_uint8`."""
    u = y[0].float().mul(255.0).round_().clamp_(0, 255).to(torch.uint8)
    return u.permute(1, 2, 0).contiguous().cpu().numpy()


@contextlib.contextmanager
def cudnn_benchmark(flag: bool | None):
    """Set ``torch.backends.cudnn.benchmark`` to ``flag`` for the block and restore it (None: leave it)."""
    if flag is None:
        yield
        return
    old = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = flag
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = old


def with_cudnn_benchmark(runner: Runner, flag: bool) -> Runner:
    """``runner`` with ``torch.backends.cudnn.benchmark`` set to ``flag`` around each call, recorded in its settings.

    The flag is process-wide: our torch backend turns it on when it opens, while a peer's own script leaves
    torch's default (off). Setting it per call gives every runner in one process the flag its own program has."""
    fn = runner.fn

    def run(img: np.ndarray) -> np.ndarray:
        with cudnn_benchmark(flag):
            return fn(img)

    runner.fn = run
    runner.settings["cudnn.benchmark"] = flag
    return runner


# --------------------------------------------------------------------------------------------
# ours


def ours(model: torch.nn.Module, *, tile: int = 0, tile_pad: int | None = None, label: str | None = None,
         backend: str = "auto", device: str | torch.device = "cpu", precision: str | None = None) -> Runner:
    """esrgan-video's Upscaler with its defaults (``backend="auto"``: what a user gets) on ``device`` (the CPU:
    fp32; CUDA: fp16 unless ``precision`` says otherwise); ``tile=0`` is the whole frame. The backend auto picked
    (e.g. ``auto → onnxruntime cpu fp32``, ``auto → torch cuda fp16``) is recorded in the settings after the first call.

    The Upscaler moves ``model`` to ``device`` (its contract for a loaded module)."""
    from esrgan_video.upscaler import Upscaler

    up = Upscaler(model, tile=tile, tile_pad=tile_pad, backend=backend, device=device, precision=precision)
    settings = {"tile": tile, "tile_pad": up.config.tile_pad if tile else None, "backend": backend}

    def run(img: np.ndarray) -> np.ndarray:
        out = up.upscale(img)
        info = up.backend_info
        used = f"{info.name} {info.device.type} {PRECISION_NAMES.get(info.dtype, str(info.dtype))}"
        settings["backend"] = f"{backend} → {used}" if backend == "auto" else used
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


def spandrel_plain(model: torch.nn.Module, *, device: str | torch.device = "cpu", half: bool = False) -> Runner:
    """spandrel + plain PyTorch: what a Python user would write (its README: load, ``.cuda().eval()``,
    ``.half()`` where the descriptor ``supports_half``, call under ``torch.no_grad()``)."""
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
    arch = f"{desc.architecture.name}" if hasattr(desc, "architecture") else type(desc.model).__name__
    dev, dtype = torch.device(device), torch.float16 if half else torch.float32
    if half and not desc.supports_half:
        raise PeerUnavailable(f"spandrel says {arch} does not support fp16 (supports_half is False)")
    desc.to(dev)
    if half:
        desc.half()
    desc.eval()

    def run(img: np.ndarray) -> np.ndarray:
        x = frame_tensor(img, dev, dtype)
        with torch.no_grad():
            y = desc(x)
        return frame_array(y)

    return Runner(name="spandrel", peer="spandrel", fn=run,
                  settings={"spandrel": spandrel.__version__, "arch": arch, "grad": "torch.no_grad",
                            "device": str(dev), "precision": PRECISION_NAMES[dtype]}, impl=desc)


# --------------------------------------------------------------------------------------------
# plain PyTorch


def plain_torch(model: torch.nn.Module, *, device: str | torch.device = "cpu", half: bool = False,
                cudnn_benchmark: bool | None = None, label: str | None = None) -> Runner:
    """Plain PyTorch, what a Python user writes: a copy of the model, ``.half()`` when ``half``,
    ``.to(device).eval()``, called under ``torch.no_grad()`` in NCHW (no channels_last, no compile, no CUDA graphs),
    the frame converted on the device (:func:`frame_tensor` / :func:`frame_array`).

    ``cudnn_benchmark``: None leaves ``torch.backends.cudnn.benchmark`` as the process has it; True or False
    sets it around each call (see :func:`with_cudnn_benchmark`). ``model`` itself is not changed."""
    dev, dtype = torch.device(device), torch.float16 if half else torch.float32
    net = copy.deepcopy(model)
    net = net.to(device=dev, dtype=dtype).eval()

    def run(img: np.ndarray) -> np.ndarray:
        x = frame_tensor(img, dev, dtype)
        with torch.no_grad():
            y = net(x)
        return frame_array(y)

    name = label or f"plain PyTorch {PRECISION_NAMES[dtype]}" + (" + cudnn.benchmark" if cudnn_benchmark else "")
    runner = Runner(name=name, peer="pytorch", fn=run, impl=net,
                    settings={"device": str(dev), "precision": PRECISION_NAMES[dtype], "layout": "NCHW",
                              "grad": "torch.no_grad"})
    return runner if cudnn_benchmark is None else with_cudnn_benchmark(runner, cudnn_benchmark)


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
    label: str | None = None, device: str | torch.device = "cpu", half: bool = False,
) -> Runner:
    """The official ``RealESRGANer`` on our weights (fp32 on the CPU by default; ``half=True`` with a CUDA
    ``device`` is its GPU default); BGR in/out is handled here. Its own pre/post-processing (float32 numpy on
    the host, its uint8 conversion) is part of what it costs.

    ``pre_pad=0`` (default here) makes it compute our function; its own default is 10 (reflect padding).
    """
    if describe(model).architecture != "ESRGAN":
        raise PeerUnavailable(f"RealESRGANer adapter here builds basicsr's RRDBNet; {describe(model).summary} is not one")
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
                              pre_pad=pre_pad, half=half, device=torch.device(device))
    except Exception as e:  # noqa: BLE001
        raise PeerUnavailable(error_line(e)) from e

    def run(img: np.ndarray) -> np.ndarray:
        sink = io.StringIO()  # tile_process prints one line per tile
        with contextlib.redirect_stdout(sink):
            out, _ = up.enhance(np.ascontiguousarray(img[..., ::-1]), outscale=p.scale)
        return np.ascontiguousarray(out[..., ::-1])

    name = label or ("realesrgan" if not tile else f"realesrgan tile={tile}")
    return Runner(name=name, peer="realesrgan", fn=run,
                  settings={"tile": tile, "tile_pad": tile_pad if tile else None, "pre_pad": pre_pad, "half": half,
                            **({} if torch.device(device).type == "cpu" else {"device": str(device)})},
                  impl=up)


# --------------------------------------------------------------------------------------------
# vs-mlrt: ONNX Runtime and TensorRT plugins


def _vapoursynth_core(namespace: str, plugin: str, install: str) -> tuple[Any, Any]:
    """(vapoursynth module, core) when ``core.<namespace>`` exists; PeerUnavailable with the install hint otherwise."""
    try:
        import vapoursynth as vs
    except ImportError as e:
        raise PeerUnavailable(error_line(e)) from e
    core = vs.core
    if not hasattr(core, namespace):
        raise PeerUnavailable(
            f"vapoursynth has no {namespace!r} namespace: vs-mlrt's {plugin} plugin is not installed ({install})"
        )
    return vs, core


def _frame_source(vs: Any, core: Any, *, height: int, width: int) -> tuple[Any, dict[str, np.ndarray]]:
    """An endless RGBS clip whose every frame is the planes last put in the returned dict under ``planes``."""
    state: dict[str, np.ndarray] = {}

    def fill(n: int, f: "vs.VideoFrame") -> "vs.VideoFrame":
        fout = f.copy()
        for i in range(3):
            np.copyto(np.asarray(fout[i]), state["planes"][i])
        return fout

    blank = core.std.BlankClip(format=vs.RGBS, width=width, height=height, length=1 << 30, keep=False)
    return core.std.ModifyFrame(blank, blank, fill), state


def _node_fn(node: Any, state: dict[str, np.ndarray], *, height: int, width: int,
             label: str) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 RGB frame → the node's output for it as uint8 RGB (a fresh frame index each call: no cache hits)."""
    counter = iter(range(1 << 30))

    def run(img: np.ndarray) -> np.ndarray:
        if img.shape[:2] != (height, width):
            raise ValueError(f"{label} runner was built for {height}x{width}, got {img.shape[:2]}")
        state["planes"] = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32) / 255.0
        f = node.get_frame(next(counter))
        out = np.stack([np.asarray(f[i]) for i in range(3)], axis=-1)
        return to_uint8(out)

    return run


def _plugin_version(ns: Any, vs: Any) -> dict[str, str]:
    try:
        version = ns.Version()
    except (AttributeError, vs.Error):
        return {}
    return {k: str(v.decode() if isinstance(v, bytes) else v) for k, v in version.items()}


def vsmlrt_ort(model: torch.nn.Module, workdir: Path, *, height: int, width: int, label: str | None = None,
               scale_as_conv: bool = False, provider: str = "CPU", fp16: bool = False, device_id: int = 0) -> Runner:
    """vs-mlrt's ``core.ort.Model`` (CPU provider, fp32 by default; ``provider="CUDA", fp16=True`` on a GPU,
    where the plugin converts the fp32 graph to fp16 itself) on an fp32 ONNX export at the frame's shape.

    By default the plain export (the graph a vs-mlrt user has: RRDB scaling as Mul, like the official
    Real-ESRGAN export). ``scale_as_conv=True`` feeds it the graph our ONNX Runtime backend runs instead
    (RRDB scaling and the compact model's PReLU as depthwise convs; a diagnostic row: it shows how much of our
    lead is the graph rather than the runtime)."""
    vs, core = _vapoursynth_core("ort", "ONNX Runtime", "pip install vapoursynth-mlrt-ort")
    from esrgan_video.runtime.onnx_export import ExportSpec, export_onnx

    on_cpu = provider.upper() == "CPU"
    onnx_path = Path(workdir) / f"{_graph_stem(model)}_{height}x{width}_fp32{'_convscale' if scale_as_conv else ''}.onnx"
    if not onnx_path.exists():  # traced on the GPU for a GPU provider: a full-size trace on the CPU is slow
        export_onnx(model, ExportSpec(tile_shape=(height, width), batch=1, precision="fp32",
                                      scale_as_conv=scale_as_conv, prelu_as_convs=scale_as_conv), onnx_path,
                    device="cpu" if on_cpu else None)
    src, state = _frame_source(vs, core, height=height, width=width)
    gpu = {} if on_cpu else {"device_id": device_id}
    try:
        node = core.ort.Model(src, network_path=str(onnx_path), provider=provider, fp16=fp16, num_streams=1, **gpu)
    except vs.Error as e:
        raise PeerUnavailable(error_line(e)) from e
    ver = _plugin_version(core.ort, vs)
    name = label or "vsmlrt-ort"
    return Runner(name=name, peer="peer-diagnostic" if scale_as_conv else "vsmlrt-ort",
                  fn=_node_fn(node, state, height=height, width=width, label=name),
                  settings={"provider": provider, "fp16": fp16, "onnx": onnx_path.name,
                            "plugin": ver.get("version", ""), "onnxruntime": ver.get("onnxruntime_version", "")},
                  impl=node)


class _HalfInside(torch.nn.Module):
    """fp32 in, fp16 network, fp32 out: the graph of an fp16 engine that takes and returns an RGBS clip's planes."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.half()).float()


def fp16_onnx_with_fp32_io(model: torch.nn.Module, *, height: int, width: int,
                           device: str | torch.device = "cuda") -> bytes:
    """Our plain ONNX export in fp16 (RRDB scaling as Mul, no clamp) wrapped in fp32 input/output casts."""
    from esrgan_video.runtime.onnx_export import (
        DEFAULT_OPSET,
        INPUT_NAME,
        OUTPUT_NAME,
        ExportSpec,
        check_onnx,
        export_module,
    )

    net = _HalfInside(export_module(model, ExportSpec(tile_shape=(height, width), precision="fp16"), device=device))
    x = torch.rand(1, describe(model).in_channels, height, width, device=device)
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(net, (x,), buf, **legacy, opset_version=DEFAULT_OPSET, input_names=[INPUT_NAME],
                          output_names=[OUTPUT_NAME], do_constant_folding=True)
    check_onnx(buf.getvalue())
    return buf.getvalue()


def vsmlrt_trt(model: torch.nn.Module, workdir: Path, *, height: int, width: int, device_id: int = 0,
               opt_level: int = 3, label: str | None = None, build_allowed: bool = True) -> Runner:
    """vs-mlrt's TensorRT plugin (``core.trt.Model``, one stream) on a static fp16 engine for the frame's shape.

    vs-mlrt's own scripts build engines with ``trtexec``, which no pip package ships; here the engine is built
    with the ``tensorrt`` Python package from our plain export with fp32 I/O (the RGBS planes) and fp16 inside
    (:func:`fp16_onnx_with_fp32_io`). The plugin links its own TensorRT (``tensorrt-cu13-libs``): an engine
    from a different TensorRT version is refused, and that refusal is the recorded reason. ``build_allowed=False``
    (the caller's time budget) makes it unavailable instead of building."""
    vs, core = _vapoursynth_core("trt", "TensorRT", "pip install vapoursynth-mlrt-trt")
    if not torch.cuda.is_available():
        raise PeerUnavailable("vs-mlrt's TensorRT plugin needs a CUDA device; torch sees none")
    from esrgan_video.runtime.tensorrt_backend import BuildOptions, build_engine, tensorrt_available

    if not tensorrt_available():
        raise PeerUnavailable("building its engine needs the tensorrt Python package (pip install tensorrt-cu13, "
                              "the version vs-mlrt's plugin links), which is not installed")
    import tensorrt

    engine = Path(workdir) / f"{_graph_stem(model)}_{height}x{width}_fp16_fp32io_trt{tensorrt.__version__}.engine"
    if not engine.exists() and not build_allowed:
        raise PeerUnavailable("not run: its engine build (about 2 minutes) does not fit in the time left")
    try:
        if not engine.exists():
            onnx = fp16_onnx_with_fp32_io(model, height=height, width=width, device=f"cuda:{device_id}")
            engine.write_bytes(build_engine(onnx, shapes=((1, height, width),) * 3,
                                            in_channels=describe(model).in_channels,
                                            options=BuildOptions(opt_level=opt_level), log=lambda _msg: None))
        src, state = _frame_source(vs, core, height=height, width=width)
        node = core.trt.Model(src, engine_path=str(engine), num_streams=1, device_id=device_id)
    except Exception as e:  # noqa: BLE001 - export, build or the plugin's refusal: the recorded reason
        ver = _plugin_version(core.trt, vs)
        raise PeerUnavailable(f"{error_line(e)} (engine built with tensorrt {tensorrt.__version__}; "
                              f"plugin: {ver or 'version unknown'})") from e
    ver = _plugin_version(core.trt, vs)
    name = label or "vsmlrt-trt"
    return Runner(name=name, peer="vsmlrt-trt", fn=_node_fn(node, state, height=height, width=width, label=name),
                  settings={"engine": f"static 1x3x{height}x{width}, fp16 inside, fp32 I/O, "
                                      f"tensorrt {tensorrt.__version__}, opt level {opt_level}",
                            "num_streams": 1, "plugin": ver.get("version", ""),
                            "tensorrt_in_plugin": ver.get("tensorrt_version", "")},
                  impl=node)
