"""Which architecture a state dict is, and its hyperparameters, from key names and tensor shapes only.

Architectures, tried in order: the ESRGAN family (:mod:`.esrgan`: RRDB in the new, BSRGAN and old key layouts,
ESRGAN+, scales 1-16, pixel-unshuffle inputs, 1/3/4 channels) and Real-ESRGAN's compact model
(:mod:`.compact`). When none matches, the error lists what the file holds.
"""

from __future__ import annotations

from ..arch.rrdbnet import RRDBParams
from ..arch.srvgg import CompactParams
from ..errors import ModelError
from . import compact, esrgan
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


def expected_shapes(params: RRDBParams | CompactParams) -> dict[str, tuple[int, ...]]:
    """Every key of the network with ``params`` and its shape, in network order."""
    if isinstance(params, RRDBParams):
        return esrgan.expected_shapes(params)
    return compact.expected_shapes(params)


def detect_params(sd: StateDict, source: str) -> RRDBParams | CompactParams:
    """The hyperparameters of a state dict (any known layout)."""
    return detect(sd, source)[1]
