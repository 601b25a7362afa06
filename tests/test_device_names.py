"""An error about the device names it as the user gave it (``--device cuda``, ``--device 0``, ``--devices 0``,
``device="cuda"``), not as options normalised it (``'cuda:0'``): ``runtime.devices.Device`` is the canonical
spelling that keeps what was given."""

from __future__ import annotations

import copy
import dataclasses
import json
import pickle

import pytest
import torch

from esrgan_video.errors import BackendError
from esrgan_video.options import RuntimeOptions, UpscaleOptions
from esrgan_video.runtime.devices import parse_device, parse_devices
from esrgan_video.testing import near_identity_model, run_cli

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a machine without CUDA")


def test_a_parsed_device_is_its_canonical_spelling_and_keeps_what_was_given():
    for given, canonical in (("cuda", "cuda:0"), (0, "cuda:0"), ("1", "cuda:1"), (" CPU ", "cpu")):
        dev = parse_device(given)
        assert dev == canonical and hash(dev) == hash(canonical) and str(dev) == canonical and dev.given == given
        assert json.dumps({"d": dev}) == json.dumps({"d": canonical}) and repr(dev) == repr(canonical)
        for again in (pickle.loads(pickle.dumps(dev)), copy.deepcopy(dev), parse_device(dev)):
            assert again == canonical and again.given == given
    runtime = dataclasses.replace(RuntimeOptions(device="cuda"), tile=64)
    assert runtime.device == "cuda:0" and runtime.device.given == "cuda"
    assert UpscaleOptions.from_kwargs(device=0).runtime.device.given == 0
    assert [d.given for d in parse_devices(parse_device("cuda"))] == ["cuda"]
    assert parse_devices("0,cuda") == ["cuda:0", "cuda:0"]


@no_cuda
def test_the_api_names_the_device_as_given():
    from esrgan_video.upscaler import Upscaler

    for given in ("cuda", 0):
        with pytest.raises(BackendError) as e:
            Upscaler(near_identity_model(2, nf=4, nb=1, gc=2), device=given)
        assert str(e.value).startswith(f"device {given!r}: no CUDA GPU is available here; to run on the CPU")


@no_cuda
def test_the_command_line_names_the_device_as_given(tmp_path, capfd, near_identity_file):
    import media

    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=2)
    model = near_identity_file(2, nf=4, nb=1, gc=2)
    for args, named in ((("--device", "cuda"), "'cuda'"), (("--device", "0"), "'0'"),
                        (("batch", "-o", tmp_path / "out", "--device", "cuda"), "'cuda'"),
                        (("batch", "-o", tmp_path / "out", "--devices", "0"), "'0'")):
        cmd = (args[0], src, *args[1:]) if args[0] == "batch" else (src, tmp_path / "o.mkv", *args)
        p = run_cli(capfd, *cmd, "--model", model)
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 7 and len(lines) == 1, p.stderr
        assert lines[0].startswith(f"esrgan-video: error: device {named}: no CUDA GPU is available here"), p.stderr
