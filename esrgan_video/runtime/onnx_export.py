"""Export a network (RRDB or compact) to ONNX for TensorRT and ONNX Runtime (strongly typed: the precision
lives in the graph). Input channels and the size multiple come from the model descriptor.

* Exporter: the TorchScript exporter, chosen explicitly (``dynamo=False``); torch 2.9 made the
  dynamo exporter the default, whose graphs differ between torch releases.
* Opset 17 by default (``LayerNormalization`` era; every op here is older).
* Static tile shape by default (one input shape, the fastest engine); ``dynamic=True`` marks
  batch, height and width dynamic for min/opt/max optimisation profiles.
* fp16: half weights and activations with fp16 input/output tensors (half the PCIe/HBM
  bytes of fp32 I/O; the runtime converts on the device). ``fp32_layers`` names submodules
  (``conv_first``, ``body``, ``body.22``, ``conv_body``, ``conv_up1``...) that stay fp32, for
  checkpoints whose activations overflow fp16 (max 65504): each conv casts its input to its
  own dtype, so values stay fp32 from an fp32 layer through adds/upsampling until an fp16
  layer consumes them (explicit Cast nodes in the graph; see
  :func:`esrgan_video.runtime.torch_backend.apply_fp32_layers`).
  :func:`activation_peaks` measures the peaks per layer on a real input to choose them.
* No final Clip: the graph ends at ``conv_last``. The runtime checks the raw output for
  NaN/Inf and clamps afterwards, because a Clip maps NaN to 0 in some implementations
  and turns an fp16 overflow into silent black frames.
* Pixel-unshuffle (x2/x1 models) is reshape/permute in :mod:`esrgan_video.arch.rrdbnet`,
  so the graph holds Reshape/Transpose, never SpaceToDepth.
* ``scale_as_conv`` (the ONNX Runtime CPU export): each RRDB's ``out * 0.2 + x`` becomes a
  depthwise 1×1 Conv (weights 0.2, no bias) plus the Add. ONNX Runtime folds a Mul into the
  Conv before it, but an RRDB's Mul follows an Add; left as a Mul, it is the one op its NCHWc
  transformer cannot keep in the blocked layout, so every later conv gets a Reorder before
  and after it (333 Reorder nodes in x4plus). As a Conv, the whole trunk stays blocked:
  measured 6-18 % faster on the CPU (anime 6B 64-192 px, x4plus 48-96 px), the same function
  (one multiply by the same constant; max |Δ| < 1e-6). Off for TensorRT, which fuses the Mul.
* ``prelu_as_convs`` (also the ONNX Runtime CPU export): the compact model's PReLU is the other op
  the NCHWc transformer cannot keep blocked: left as PRelu, each of the 18 convs of
  realesr-animevideov3 gets a ReorderInput/ReorderOutput pair. Written as depthwise 1x1 convs,
  a Relu and an Add (:class:`ConvPReLU`), the graph stays blocked. Off for TensorRT (PRelu is a
  native layer there).
"""

from __future__ import annotations

import copy
import inspect
import io
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from esrgan_video.arch.rrdbnet import RESIDUAL_SCALE
from esrgan_video.errors import BackendError
from esrgan_video.models.descriptor import describe

EXPORTER = "torchscript"
DEFAULT_OPSET = 17
INPUT_NAME = "input"
OUTPUT_NAME = "output"
FP16_MAX = 65504.0
EXPORT_PRECISIONS = ("fp16", "fp32")


@dataclass(frozen=True)
class ExportSpec:
    """Everything about the ONNX graph that shapes the engine (part of the engine cache key)."""

    tile_shape: tuple[int, int]
    """(height, width) of the input tile (the opt shape when dynamic)."""
    batch: int = 1
    """Batch size (the opt batch when dynamic)."""
    precision: str = "fp16"
    """'fp16' (half weights, activations and I/O) or 'fp32'."""
    fp32_layers: tuple[str, ...] = ()
    """Submodules kept in fp32 inside an fp16 graph."""
    dynamic: bool = False
    """Batch, height and width dynamic in the graph."""
    opset: int = DEFAULT_OPSET
    exporter: str = EXPORTER
    scale_as_conv: bool = False
    """RRDB residual scaling as a depthwise 1x1 Conv (for ONNX Runtime's NCHWc layout; see the module doc)."""
    prelu_as_convs: bool = False
    """Each PReLU (the compact model's activation) as depthwise 1x1 Convs, a Relu and an Add, which ONNX
    Runtime keeps in its NCHWc layout (see the module doc)."""

    def __post_init__(self) -> None:
        h, w = self.tile_shape
        if h < 1 or w < 1 or self.batch < 1:
            raise BackendError(f"ONNX export: tile shape and batch must be positive, got {self.tile_shape} x {self.batch}")
        if self.precision not in EXPORT_PRECISIONS:
            raise BackendError(
                f"ONNX export: precision must be one of {EXPORT_PRECISIONS} (TensorRT engines), got {self.precision!r}"
            )
        if self.fp32_layers and self.precision != "fp16":
            raise BackendError("ONNX export: fp32_layers only applies to an fp16 export")
        if self.opset < 17:
            raise BackendError(f"ONNX export: opset must be >= 17, got {self.opset}")

    @property
    def dtype(self) -> torch.dtype:
        return torch.float16 if self.precision == "fp16" else torch.float32


class ConvScaledRRDB(nn.Module):
    """An RRDB whose residual scaling is a depthwise 1x1 Conv: ``scale(rdb3(rdb2(rdb1(x)))) + x``."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.rdb1, self.rdb2, self.rdb3 = block.rdb1, block.rdb2, block.rdb3
        nf = block.rdb1.conv1.in_channels
        w = block.rdb1.conv1.weight
        self.scale = nn.Conv2d(nf, nf, 1, groups=nf, bias=False, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            self.scale.weight.fill_(RESIDUAL_SCALE)
        self.scale.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale(self.rdb3(self.rdb2(self.rdb1(x)))) + x


def scale_rrdbs_with_convs(model: nn.Module) -> nn.Module:
    """Replace every RRDB in ``model.body`` with a :class:`ConvScaledRRDB` (in place; returns ``model``).
    ``model`` may be the generator or prepare_model's I/O wrapper around it (``.inner``)."""
    from esrgan_video.arch.rrdbnet import RRDB

    body = getattr(getattr(model, "inner", model), "body", None)
    if isinstance(body, nn.Sequential):
        for i, block in enumerate(body):
            if isinstance(block, RRDB):
                body[i] = ConvScaledRRDB(block)
    return model


class ConvPReLU(nn.Module):
    """PReLU written with ops ONNX Runtime's NCHWc layout keeps: ``PReLU(x) = (1 - a)·relu(x) + a·x``.

    With ``c = 1 - a``: ``c·relu(x) = sign(c)·relu(|c|·x)``, so the module is ``sign(relu(mag(x))) + slope(x)``
    with depthwise 1x1 convs ``mag`` (weights |c|), ``sign`` (±1; left out when every c >= 0, as in the published
    compact models) and ``slope`` (weights a). ONNX Runtime fuses the Relu into ``mag`` and the Add into the last
    conv. The same function up to float rounding (max |Δ| ~1e-7 relative).
    """

    def __init__(self, prelu: nn.PReLU, channels: int) -> None:
        super().__init__()
        w = prelu.weight.detach()
        a = (w.expand(channels) if w.numel() == 1 else w).reshape(channels, 1, 1, 1)
        c = 1.0 - a

        def depthwise(weight: torch.Tensor) -> nn.Conv2d:
            conv = nn.Conv2d(channels, channels, 1, groups=channels, bias=False, device=w.device, dtype=w.dtype)
            with torch.no_grad():
                conv.weight.copy_(weight)
            return conv.requires_grad_(False)

        self.mag = depthwise(c.abs())
        self.sign = depthwise(torch.sign(c)) if bool((c < 0).any()) else None
        self.slope = depthwise(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = torch.relu(self.mag(x))
        if self.sign is not None:
            pos = self.sign(pos)
        return pos + self.slope(x)


def prelus_as_convs(model: nn.Module) -> nn.Module:
    """Replace every ``nn.PReLU`` in a compact model's ``body`` with a :class:`ConvPReLU` (in place; returns
    ``model``, which may be prepare_model's I/O wrapper around the network)."""
    body = getattr(getattr(model, "inner", model), "body", None)
    if isinstance(body, nn.ModuleList):
        for i, layer in enumerate(body):
            if isinstance(layer, nn.PReLU) and i > 0 and isinstance(body[i - 1], nn.Conv2d):
                body[i] = ConvPReLU(layer, body[i - 1].out_channels)
    return model


def export_module(model: nn.Module, spec: ExportSpec, *, device: str | torch.device = "cpu") -> nn.Module:
    """The module that gets traced: a copy of ``model`` in the spec's precision, no clamp, fp32 layers."""
    from esrgan_video.runtime.torch_backend import prepare_model

    m, _ = prepare_model(model, torch.device(device), spec.dtype, channels_last=False, fp32_layers=spec.fp32_layers)
    if spec.scale_as_conv:
        scale_rrdbs_with_convs(m)
    if spec.prelu_as_convs:
        prelus_as_convs(m)
    return m


def _torchscript_exporter() -> dict:
    """``dynamo=False`` where torch.onnx.export has the switch (torch >= 2.5); older torch only has TorchScript."""
    return {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}


def export_onnx(
    model: nn.Module,
    spec: ExportSpec,
    path: str | Path | None = None,
    *,
    device: str | torch.device | None = None,
    check: bool = True,
) -> bytes:
    """Export ``model`` as described by ``spec``; returns the ONNX bytes (and writes ``path`` if given).

    ``device`` is where the trace runs (one forward pass at the tile shape): default CUDA when
    available, since a full-size fp16 trace on the CPU is slow.
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    m = export_module(model, spec, device=device)
    desc = describe(model)
    in_nc, u = desc.in_channels, desc.size_multiple
    h, w = spec.tile_shape
    if spec.dynamic and (h % u or w % u):
        raise BackendError(
            f"ONNX export: a dynamic x{model.scale} graph needs tile sides that are multiples of {u}, got {h}x{w}"
        )
    x = torch.rand(spec.batch, in_nc, h, w, device=device, dtype=spec.dtype)
    axes = {0: "batch", 2: "height", 3: "width"}
    out_axes = {0: "batch", 2: "out_height", 3: "out_width"}
    dynamic_axes = {INPUT_NAME: axes, OUTPUT_NAME: out_axes} if spec.dynamic else None
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is chosen on purpose
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # pad/crop branches are static per shape
        with torch.no_grad():
            torch.onnx.export(
                m,
                (x,),
                buf,
                **_torchscript_exporter(),
                opset_version=spec.opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    data = buf.getvalue()
    if check:
        check_onnx(data)
    if path is not None:  # whole or not at all: a failed or killed write leaves no temporary file for good
        from esrgan_video.files import atomic_write

        atomic_write(path, data)
    return data


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise BackendError("ONNX checks need the onnx package: pip install 'esrgan-video[tensorrt]'") from e
    return onnx


def check_onnx(data: bytes) -> None:
    """Run onnx.checker on the graph (BackendError with the checker's message when it fails)."""
    onnx = _onnx()
    try:
        onnx.checker.check_model(onnx.load_from_string(data), full_check=True)
    except onnx.checker.ValidationError as e:
        raise BackendError(f"ONNX export: the exported graph is invalid: {e}") from e


def graph_ops(data: bytes) -> set[str]:
    """The set of op types in an ONNX graph."""
    return {n.op_type for n in _onnx().load_from_string(data).graph.node}


def io_types(data: bytes) -> dict[str, tuple[int, list[int | str]]]:
    """{tensor name: (ONNX elem type, dims)} of the graph inputs and outputs (dims: int or symbolic name)."""
    g = _onnx().load_from_string(data).graph
    out = {}
    for v in list(g.input) + list(g.output):
        t = v.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim]
        out[v.name] = (t.elem_type, dims)
    return out


def activation_peaks(model: nn.Module, x: torch.Tensor, layers: Iterable[str] | None = None) -> dict[str, float]:
    """Max |activation| (fp32) at the output of each named layer for input ``x``.

    Default layers: conv_first, every body block, conv_body, the trunk sum (input of
    conv_up1), the upsampling convs, conv_hr and conv_last. A peak near or above
    :data:`FP16_MAX` / 4 marks a layer to keep in fp32 (``fp32_layers``).
    """
    m = copy.deepcopy(model).eval().float()
    if hasattr(m, "clamp"):
        m.clamp = False
    names = dict(m.named_modules())
    if layers is None:
        layers = [n for n in names if n in ("conv_first", "conv_body", "conv_hr", "conv_last")
                  or n.startswith("conv_up") or (n.startswith("body.") and n.count(".") == 1)]
    peaks: dict[str, float] = {}
    hooks = []

    def record(name):
        def hook(_mod, _inp, out):
            peaks[name] = max(peaks.get(name, 0.0), float(out.detach().abs().max()))
        return hook

    for name in layers:
        hooks.append(names[name].register_forward_hook(record(name)))
    if "conv_up1" in names:
        def trunk(_mod, inp):
            peaks["trunk_sum"] = float(inp[0].detach().abs().max())
        hooks.append(names["conv_up1"].register_forward_pre_hook(trunk))
    try:
        with torch.inference_mode():
            m(x.float())
    finally:
        for h in hooks:
            h.remove()
    return peaks


def suggest_fp32_layers(peaks: dict[str, float], *, headroom: float = 4.0) -> tuple[str, ...]:
    """Layers whose peak is within ``headroom`` of the fp16 maximum (pure; 'trunk_sum' maps to 'body')."""
    out = []
    for name, peak in peaks.items():
        if peak * headroom >= FP16_MAX:
            out.append("body" if name == "trunk_sum" else name)
    return tuple(dict.fromkeys(out))
