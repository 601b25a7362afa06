"""ncnn ``.param`` / ``.bin`` of an RRDB generator → new-arch PyTorch state dict.

Format facts used here:

- ``.param`` is text: the magic line ``7767517``, a line ``<layer count> <blob count>``, then one layer a line:
  ``Type Name n_in n_out in_blobs... out_blobs... k=v ...``. For ``Convolution``: ``0=`` num_output,
  ``1=`` kernel size, ``5=`` bias flag, ``6=`` weight count.
- ``.bin`` holds, for each Convolution in order, a 4-byte tag (``0x01306B47``: float16 data follows, padded to
  4 bytes; ``0``: float32 data follows), the weights in (out, in, kh, kw) order, then ``num_output`` float32
  biases with no tag.
- The Convolution layers of an RRDB export appear in the order conv_first, body[i].rdb1..3.conv1..5,
  conv_body, conv_up1.., conv_hr, conv_last; the number of ``Interp`` layers is the number of up stages.
"""

from __future__ import annotations

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
    if n_up not in (2, 3) or n_body < 15 or n_body % 15:
        raise ValueError(f"{n_convs} convolutions with {n_up} up stages is not an RRDB generator")
    names = ["conv_first"]
    for b in range(n_body // 15):
        names += [f"body.{b}.rdb{r}.conv{c}" for r in (1, 2, 3) for c in range(1, 6)]
    names += ["conv_body"] + [f"conv_up{i}" for i in range(1, n_up + 1)] + ["conv_hr", "conv_last"]
    return names


def convert(param_text: str, bin_data: bytes, *, source: str = "ncnn model") -> tuple[StateDict, dict[str, int]]:
    """Convert an RRDB generator's ncnn files to a new-arch float32 state dict.

    Returns (state dict, counts) where counts says how many conv weights were stored as fp16 and fp32.
    """
    graph = parse_param(param_text, f"{source} (.param)")
    weighted = sorted({layer.type for layer in graph.layers if layer.type in _WEIGHTED_LAYERS})
    if weighted:
        raise ModelError(f"{source} has {', '.join(weighted)} layers; an RRDB generator has only plain convolutions")
    convs = graph.convolutions
    n_up = sum(1 for layer in graph.layers if layer.type == "Interp")
    try:
        names = rrdb_conv_names(len(convs), n_up)
    except ValueError as e:
        raise ModelError(f"{source}: {e}") from e
    sd: StateDict = {}
    counts = {"fp16": 0, "fp32": 0}
    offset = 0
    buf = memoryview(bin_data)
    for name, layer in zip(names, convs):
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
        if len(buf) < offset + 4:
            raise ModelError(f"{source} (.bin) ends before the weights of {layer.name} ({name}); truncated file?")
        tag = int.from_bytes(buf[offset : offset + 4], "little")
        offset += 4
        if tag == TAG_FP16:
            nbytes = 2 * n_weight
            dtype = np.float16
            counts["fp16"] += 1
        elif tag == TAG_FP32:
            nbytes = 4 * n_weight
            dtype = np.float32
            counts["fp32"] += 1
        else:
            raise ModelError(f"{source} (.bin): weights of {layer.name} have storage tag {tag:#010x}; "
                             "only float16 (0x01306b47) and float32 (0) are supported")
        if len(buf) < offset + nbytes:
            raise ModelError(f"{source} (.bin) ends inside the weights of {layer.name} ({name}); truncated file?")
        w = np.frombuffer(buf[offset : offset + nbytes], dtype=dtype).astype(np.float32)
        offset += (nbytes + 3) // 4 * 4
        sd[f"{name}.weight"] = torch.from_numpy(w.reshape(cout, cin, k, k).copy())
        if has_bias:
            if len(buf) < offset + 4 * cout:
                raise ModelError(f"{source} (.bin) ends inside the bias of {layer.name} ({name}); truncated file?")
            b = np.frombuffer(buf[offset : offset + 4 * cout], dtype=np.float32)
            offset += 4 * cout
            sd[f"{name}.bias"] = torch.from_numpy(b.copy())
        else:
            sd[f"{name}.bias"] = torch.zeros(cout)
    if offset != len(buf):
        raise ModelError(f"{source} (.bin) has {len(buf) - offset} bytes left after the last convolution; "
                         "it does not belong to this .param")
    return sd, counts


def convert_files(param_path: str | Path, bin_path: str | Path | None = None) -> tuple[StateDict, dict[str, int]]:
    """Convert ``x.param`` and ``x.bin`` (default: beside the .param) to a new-arch state dict."""
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


def write_ncnn(sd: StateDict, *, fp16: bool = True) -> tuple[str, bytes]:
    """Write a new-arch RRDB state dict as a minimal ncnn ``.param``/``.bin`` pair.

    The ``.param`` lists the Input, the Convolutions and one ``Interp`` per up stage in a chain: enough for
    :func:`convert` (and for round-trip tests), not a runnable ncnn graph.
    """
    ups = sorted(k for k in sd if k.startswith("conv_up") and k.endswith(".weight"))
    nb = len({k.split(".")[1] for k in sd if k.startswith("body.")})
    names = rrdb_conv_names(6 + 15 * nb + len(ups) - 2, len(ups))
    lines = ["Input input 0 1 b0"]
    blob = 0
    chunks = []
    for name in names:
        w = sd[f"{name}.weight"].detach().float().numpy()
        b = sd[f"{name}.bias"].detach().float().numpy()
        cout = w.shape[0]
        if name.startswith("conv_up"):
            lines.append(f"Interp up_{name} 1 1 b{blob} b{blob + 1} 0=1 1=2.0 2=2.0")
            blob += 1
        lines.append(f"Convolution {name.replace('.', '_')} 1 1 b{blob} b{blob + 1} 0={cout} 1=3 4=1 5=1 6={w.size}")
        blob += 1
        if fp16:
            data = w.astype(np.float16).tobytes()
            data += b"\0" * ((-len(data)) % 4)
            chunks += [TAG_FP16.to_bytes(4, "little"), data]
        else:
            chunks += [TAG_FP32.to_bytes(4, "little"), w.astype(np.float32).tobytes()]
        chunks.append(b.astype(np.float32).tobytes())
    text = "\n".join([MAGIC, f"{len(lines)} {blob + 1}", *lines]) + "\n"
    return text, b"".join(chunks)
