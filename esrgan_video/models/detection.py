"""Which architecture a state dict is, and its hyperparameters, from key names and tensor shapes only.

Architectures, tried in order: the ESRGAN family (:mod:`.esrgan`: RRDB in the new, BSRGAN and old key layouts,
ESRGAN+, scales 1-16, pixel-unshuffle inputs, 1/3/4 channels) and Real-ESRGAN's compact model
(:mod:`.compact`). When none matches, the error lists what the file holds.

A file's name can say its scale (community models: ``3x_Name.pth``, ``3xName``, ``Name_x3``, ``x3``:
:func:`scale_in_name`). It decides only what the weights cannot: an old-arch (2018 ESRGAN code) RRDB model with
one up-sampling conv is x2 or x3 (that code's x3 is ``upconv_blcok(nf, nf, 3)``, one nearest-x3 stage, with the
keys of x2; spandrel 0.4.2 reads both as x2), so such a file named x3 runs at x3, with a notice. A name whose
scale differs from what the weights make gets a notice too, and the weights decide (:func:`detect_file`).

A file this project wrote records its hyperparameters in its metadata
(:data:`~esrgan_video.models.descriptor.HYPERPARAMETERS_KEY`): they decide the x2/x3 question of any RRDB with
one up conv (also in the new-arch keys our files hold), before the file name, and must otherwise be what the keys
make; a file whose record contradicts its keys is refused.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import PurePath

from ..arch.rrdbnet import SUPPORTED_SCALES, RRDBParams
from ..arch.srvgg import CompactParams
from ..errors import ModelError
from . import compact, esrgan
from .descriptor import HYPERPARAMETERS_KEY, descriptor_for, hyperparameters_from_record
from .keys import StateDict, describe_keys

KNOWN = "an ESRGAN-family (RRDB: ESRGAN, Real-ESRGAN, BSRGAN, ESRGAN+) generator or a Real-ESRGAN Compact model"


def detect(sd: StateDict, source: str) -> tuple[StateDict, RRDBParams | CompactParams]:
    """(state dict in the architecture's canonical key names, hyperparameters); ModelError naming ``source``.

    The key set and every shape are checked against the detected hyperparameters, so a model that loads here
    loads strictly into its network.
    """
    if esrgan.recognise(sd):
        canonical = esrgan.to_new_arch(sd, source)
        return canonical, esrgan.detect_params(canonical, source)
    if compact.recognise(sd):
        return dict(sd), compact.detect_params(sd, source)
    raise ModelError(f"{source} is not {KNOWN}: {describe_keys(sd)}")


NAME_SCALES = SUPPORTED_SCALES
"""The scales a file name is read for, the ones an RRDB can have (other numbers, e.g. the 264 of ``x264``, are no
scale)."""

_NAME_PATTERNS = (
    re.compile(r"(?<![a-z0-9])(\d+)x(?!\d)", re.IGNORECASE),  # 3x_Name, 3xName, Name-3x
    re.compile(r"(?<![a-z0-9])x(\d+)(?!\d)", re.IGNORECASE),  # Name_x3, x3, realesr-general-x4v3
)


def scale_in_name(file_name: str) -> int | None:
    """The scale a model file's name states (``3x_Name.pth``, ``3xName``, ``Name_x3``, ``x3``: OpenModelDB's
    conventions), or None when it states none or several. The number must start a word (``BSRGANx2`` and
    ``conv1x1`` say nothing) and be one of :data:`NAME_SCALES`."""
    stem = PurePath(file_name).stem
    found = {int(m[1]) for pattern in _NAME_PATTERNS for m in pattern.finditer(stem)}
    found &= set(NAME_SCALES)
    return found.pop() if len(found) == 1 else None


def _one_upconv(params: RRDBParams | CompactParams) -> bool:
    """An RRDB with one up conv and no unshuffle: x2 or x3 (nearest x3 before that conv), the same keys."""
    return isinstance(params, RRDBParams) and params.upsample_stages == 1 and params.unshuffle == 1


def _settled(params: RRDBParams | CompactParams, scale: int) -> RRDBParams | CompactParams:
    """``params`` at ``scale`` where that is what its keys leave open (x2 or x3 of an RRDB with one up conv); else
    ``params`` as they are."""
    if _one_upconv(params) and scale in (2, 3):
        return dataclasses.replace(params, scale=scale)
    return params


def _one_upconv_old_arch(sd: StateDict, params: RRDBParams | CompactParams) -> bool:
    return "model.0.weight" in sd and _one_upconv(params)


def _as_recorded(params: RRDBParams | CompactParams, recorded: str, source: str) -> RRDBParams | CompactParams:
    """The hyperparameters the file's metadata records, where its keys agree (the scale of a one-up-conv RRDB is
    the record's to say); ModelError otherwise."""
    try:
        said = hyperparameters_from_record(recorded)
    except ValueError as e:
        raise ModelError(f"{source}: its {HYPERPARAMETERS_KEY} metadata is unreadable ({e})") from None
    if isinstance(said, RRDBParams):
        params = _settled(params, said.scale)
    if said != params:
        raise ModelError(f"{source}: its metadata records {_described(said)}, but its weights make {_described(params)}"
                         "; the file contradicts itself (refused)")
    return params


def _with_stated_scale(params: RRDBParams | CompactParams, scale: int, source: str) -> RRDBParams | CompactParams:
    """``params`` at the scale the file's graph states (an ncnn RRDB's Interp factors), where its keys agree."""
    params = _settled(params, scale)
    if params.scale != scale:
        raise ModelError(f"{source}: its graph's up-sampling makes x{scale}, but its weights make "
                         f"{_described(params)}; the files contradict each other (refused)")
    return params


def detect_file(sd: StateDict, source: str, file_name: str, *, recorded: str | None = None,
                stated_scale: int | None = None) -> tuple[StateDict, RRDBParams | CompactParams, tuple[str, ...]]:
    """:func:`detect` for a file named ``file_name``, with the hyperparameters its metadata ``recorded``
    (:data:`~esrgan_video.models.descriptor.HYPERPARAMETERS_KEY`; None: none) or the scale its format states
    (``stated_scale``: an ncnn graph's Interp factors), or else the scale its name states (:func:`scale_in_name`),
    where the keys allow it; returns (state dict, hyperparameters, one-line notices for the user). A record or
    stated scale the keys contradict is a ModelError."""
    canonical, params = detect(sd, source)
    if recorded is not None:
        params = _as_recorded(params, recorded, source)
    if stated_scale is not None:
        params = _with_stated_scale(params, stated_scale, source)
    hint = scale_in_name(file_name)
    if hint is None or hint == params.scale:
        return canonical, params, ()
    if recorded is not None or stated_scale is not None:
        what = "metadata" if recorded is not None else "graph"
        return canonical, params, (
            f"{source}: its file name says x{hint}, but its {what} and weights make an x{params.scale} model "
            f"({_described(params)}); it runs at x{params.scale}",)
    ambiguous = _one_upconv_old_arch(sd, params)
    if ambiguous and hint == 3:
        return canonical, dataclasses.replace(params, scale=3), (
            f"{source}: runs at x3, as its file name says: an old-arch ESRGAN model with one up-sampling conv is x2 "
            "or x3 (nearest x3 before that conv), which its weights do not tell",)
    why = ("an old-arch ESRGAN model with one up-sampling conv: x2, or x3 when its name says x3" if ambiguous
           else _described(params))
    return canonical, params, (
        f"{source}: its file name says x{hint}, but its weights make an x{params.scale} model ({why}); "
        f"it runs at x{params.scale}",)


def _described(params: RRDBParams | CompactParams) -> str:
    return descriptor_for(params).summary


def expected_shapes(params: RRDBParams | CompactParams) -> dict[str, tuple[int, ...]]:
    """Every key of the network with ``params`` and its shape, in network order."""
    if isinstance(params, RRDBParams):
        return esrgan.expected_shapes(params)
    return compact.expected_shapes(params)


def detect_params(sd: StateDict, source: str) -> RRDBParams | CompactParams:
    """The hyperparameters of a state dict (any known layout)."""
    return detect(sd, source)[1]
