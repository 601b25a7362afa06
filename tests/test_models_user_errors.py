"""What a Python or VapourSynth user gets for input the API cannot take: one line that says what is wrong (an
:class:`InputError` or :class:`ModelError`), never a library's raw ValueError/IndexError; byte-swapped arrays are
simply read as their values."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from esrgan_video import load_model
from esrgan_video.errors import InputError, ModelError
from esrgan_video.testing import near_identity_model
from esrgan_video.upscaler import Upscaler

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def up():
    with Upscaler(near_identity_model(2, noise=0.2), backend="torch", device="cpu") as u:
        yield u


def test_a_big_endian_array_is_upscaled_as_its_values(up: Upscaler) -> None:
    rng = np.random.default_rng(0)
    native = rng.integers(0, 65536, (10, 12, 3)).astype(np.uint16)
    want = up.upscale(native)
    for dtype in (">u2", ">i2"):
        swapped = np.clip(native, 0, 32767 if dtype == ">i2" else 65535).astype(dtype)
        got = up.upscale(swapped)
        assert got.dtype == np.dtype(dtype) and got.shape == (20, 24, 3)
        assert np.array_equal(got.astype(np.int64), up.upscale(swapped.astype(swapped.dtype.newbyteorder("=")))
                              .astype(np.int64)), dtype
    assert np.array_equal(up.upscale(native.astype(">u2")).astype(np.uint16), want)
    floats = (native / 65535).astype(">f4")
    got = up.upscale(floats)
    assert got.dtype == np.dtype(">f4") and np.array_equal(got, up.upscale(floats.astype(np.float32)))


def test_an_empty_image_or_batch_is_an_input_error(up: Upscaler) -> None:
    for frames, words in ((np.zeros((0, 8, 3), np.uint8), "empty image (0×8"),
                          (np.zeros((8, 0, 3), np.uint16), "empty image (8×0"),
                          (np.zeros((0, 5, 3), ">u2"), "empty image (0×5"),
                          (torch.zeros(1, 3, 0, 8), "empty image (0×8"),
                          (torch.zeros(3, 6, 0), "empty image (6×0"),
                          (torch.zeros(0, 3, 8, 8), "empty batch (0 frames)")):
        with pytest.raises(InputError) as e:
            up.upscale(frames)
        assert words in str(e.value) and "\n" not in str(e.value), (frames.shape, str(e.value))
    with pytest.raises(InputError, match=r"empty image \(0×4"):
        up.upscale_tensor(torch.zeros(1, 3, 0, 4))


def test_a_file_that_is_no_checkpoint_says_so_plainly(tmp_path: Path) -> None:
    text = tmp_path / "x.pth"
    shutil.copy("/etc/passwd" if Path("/etc/passwd").is_file() else __file__, text)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(bytes(np.random.default_rng(1).integers(1, 256, 400, dtype=np.uint8).tolist()).replace(
        b"\x80", b"\x81").replace(b"PK", b"PL"))
    hello = tmp_path / "h.pth"
    hello.write_text("hello")
    for path, what in ((text, "a text file"), (hello, "a text file"), (noise, "it starts with bytes")):
        with pytest.raises(ModelError) as e:
            load_model(path)
        msg = str(e.value)
        assert msg.startswith(f"model file {path} is not a PyTorch checkpoint ({what}"), msg
        assert "not the zip or pickle file torch.save writes; expected a PyTorch .pth/.pt" in msg, msg
        assert "Error" not in msg and "\n" not in msg, msg  # no IndexError/KeyError/UnpicklingError noise
    # a protocol-0 pickle (text too) that would run code: still named as such, and nothing runs
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pth"
    evil.write_text(f"cos\nsystem\n(S'touch {marker}'\ntR.")
    with pytest.raises(ModelError, match=r"refused to load .*evil.pth: unpickling it would call os.system"):
        load_model(evil)
    assert not marker.exists()


def test_an_onnx_graph_or_an_ncnn_bin_says_what_to_pass_instead(tmp_path: Path) -> None:
    """A real ONNX export and the .bin half of a real ncnn pair were 'not a PyTorch checkpoint (it starts with bytes
    08 ...)': now each says what it is and what to pass. A PyTorch checkpoint named .bin still loads."""
    from esrgan_video.runtime.onnx_export import ExportSpec, export_onnx
    from esrgan_video.testing import write_ncnn

    net = near_identity_model(4)
    onnx = tmp_path / "net.onnx"
    export_onnx(net, ExportSpec((8, 8), precision="fp32"), onnx, device="cpu", check=False)
    with pytest.raises(ModelError) as e:
        load_model(onnx)
    assert str(e.value) == (f"model file {onnx} is an ONNX graph, which esrgan-video does not read: pass the .pth, "
                            ".safetensors or ncnn .param it was made from (the ONNX Runtime backend exports its own)")
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    text, data = write_ncnn(sd)
    (tmp_path / "net.param").write_text(text)
    (tmp_path / "net.bin").write_bytes(data)
    with pytest.raises(ModelError) as e:
        load_model(tmp_path / "net.bin")
    assert str(e.value) == (f"model file {tmp_path / 'net.bin'} is the weights half of an ncnn model: pass "
                            f"{tmp_path / 'net.param'} (its .bin is read beside it)")
    assert load_model(tmp_path / "net.param").info.name == "net.param"
    hf = tmp_path / "hf" / "net.bin"  # pytorch_model.bin style: a torch.save zip under a .bin name
    hf.parent.mkdir()
    torch.save(sd, hf)
    shutil.copy(tmp_path / "net.param", hf.with_suffix(".param"))
    assert load_model(hf).info.name == "net.bin"


def test_weights_holding_nan_or_inf_are_refused_when_read(tmp_path: Path) -> None:
    """A diverged or damaged checkpoint loaded and ran: every frame came out NaN, and the error spoke of fp16 overflow
    and advised --precision fp32 (which the CPU run already had). Now the file is refused in one line naming the
    tensors; huge but finite weights still load."""
    net = near_identity_model(4)
    for value, name in ((float("nan"), "nan.pth"), (float("inf"), "inf.pth"), (-float("inf"), "minf.safetensors")):
        sd = {k: v.clone() for k, v in net.state_dict().items()}
        sd["conv_first.weight"][0, 0, 0, 0] = value
        sd["conv_last.bias"][1] = value
        path = tmp_path / name
        if path.suffix == ".pth":
            torch.save(sd, path)
        else:
            from safetensors.torch import save_file

            save_file(sd, str(path))
        with pytest.raises(ModelError) as e:
            load_model(path)
        assert str(e.value) == (f"{path}: tensors [conv_first.weight, conv_last.bias] hold NaN or infinite values "
                                "(a diverged training run or a damaged file); it cannot give a picture")
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["conv_first.weight"].fill_(3e38)  # finite: a float32 sum of these would overflow, the check's does not
    torch.save(sd, tmp_path / "huge.pth")
    assert load_model(tmp_path / "huge.pth").conv_first.weight.max() == torch.tensor(3e38)


class _Unreadable(torch.Tensor):
    """A tensor subclass whose every torch operation raises a RuntimeError without a message (what load_state_dict
    meets reading its shape)."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError()


def test_build_model_quotes_an_error_without_a_message_in_one_line() -> None:
    from esrgan_video.models.descriptor import descriptor_for
    from esrgan_video.models.loading import ModelInfo, build_model

    net = near_identity_model(2)
    sd = {k: v.clone() for k, v in net.state_dict().items()}
    sd["conv_first.weight"] = sd["conv_first.weight"].as_subclass(_Unreadable)
    info = ModelInfo(name="m", descriptor=descriptor_for(net.params), sha256="0", source="m.pth")
    with pytest.raises(ModelError) as e:
        build_model(sd, net.params, info)
    assert str(e.value).startswith("m.pth does not fit RRDBNet(") and str(e.value).endswith("): RuntimeError")
