"""Where an output cannot go, every face says it in the video writer's words (``esrgan_video.files``): an existing
output names ``--overwrite / -y`` on the command line and ``overwrite=True`` in the Python API; a "folder" that is a file says 'X is not a directory'
(not that it does not exist); a folder where no file can be created says 'cannot create a file in DIR (Permission
denied)'. The still image and preview faces say so before a model is loaded (a missing model file is not reached),
with one line, exit 6 and nothing written."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

import media
from esrgan_video.errors import OutputError
from esrgan_video.files import check_can_create, check_output_place
from esrgan_video.stills import upscale_image
from esrgan_video.video.images import write_image

SYS = Path("/sys")


def _sys_refuses_files() -> bool:
    """sysfs refuses new files, root's too (Linux)."""
    try:
        (SYS / ".esrgan-probe").open("xb").close()
    except OSError:
        return SYS.is_dir()
    (SYS / ".esrgan-probe").unlink()
    return False


needs_sys = pytest.mark.skipif(not _sys_refuses_files(), reason="needs /sys refusing new files (Linux sysfs)")


def one_line_error(capfd, *args) -> str:
    return media.one_line_error(capfd, *args, code=6)


def test_the_shared_checks(tmp_path):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "old.png").write_bytes(b"old")
    (tmp_path / "adir.png").mkdir()
    for dst, said in [(tmp_path / "old.png", "already exists (pass overwrite=True to replace it)"),
                      (tmp_path / "afile" / "o.png", f"{tmp_path / 'afile'} is not a directory"),
                      (tmp_path / "afile" / "sub" / "o.png", f"{tmp_path / 'afile'} is not a directory"),
                      (tmp_path / "nodir" / "o.png", f"the directory {tmp_path / 'nodir'} does not exist"),
                      (tmp_path / "adir.png", "is a directory")]:
        with pytest.raises(OutputError) as e:
            check_output_place(dst, overwrite=False)
        assert str(e.value) == f"{dst}: {said}"
    with pytest.raises(OutputError, match="the output is the input file"):
        check_output_place(tmp_path / "old.png", overwrite=True, src=tmp_path / "old.png")
    check_output_place(tmp_path / "old.png", overwrite=True)
    check_output_place(tmp_path / "new.png", overwrite=False)
    check_can_create(tmp_path / "new.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir.png", "afile", "old.png"]  # the probe went


@needs_sys
def test_an_unwritable_folder():
    with pytest.raises(OutputError) as e:
        check_can_create(SYS / "o.png")
    assert str(e.value) == "/sys/o.png: cannot create a file in /sys (Permission denied)"


def _place_cases(tmp_path: Path, name: str, *, cli: bool = True) -> list[tuple[Path, str]]:
    """(output, the error's text) for each place; ``cli``: in the command line's words (``--overwrite / -y``), else
    the Python API's (``overwrite=True``)."""
    (tmp_path / "afile").write_text("not a folder")
    (tmp_path / name).write_bytes(b"old")
    how = "use --overwrite / -y" if cli else "pass overwrite=True"
    cases = [(tmp_path / name, f"{tmp_path / name}: already exists ({how} to replace it)"),
             (tmp_path / "afile" / name, f"{tmp_path / 'afile' / name}: {tmp_path / 'afile'} is not a directory")]
    if _sys_refuses_files():
        cases.append((SYS / name, f"/sys/{name}: cannot create a file in /sys (Permission denied)"))
    return cases


def _api_and_cli_say_it_before_the_model(tmp_path, capfd, src, name, api) -> None:
    """Each place of :func:`_place_cases`: the CLI and ``api(src, dst, model=...)`` refuse it in their own words; the
    model named does not exist, so each error comes before it is loaded; nothing is written."""
    missing_model = tmp_path / "no-such-model.pth"
    for (dst, said), (_, api_said) in zip(_place_cases(tmp_path, name), _place_cases(tmp_path, name, cli=False)):
        assert one_line_error(capfd, src, dst, "--model", missing_model) == said
        with pytest.raises(OutputError) as e:
            api(src, dst, model=str(missing_model))
        assert str(e.value) == api_said
    assert (tmp_path / name).read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["afile", src.name, name])


def test_still_image_faces(tmp_path, capfd):
    """The CLI and ``upscale_image``; the model named does not exist, so each error comes before it is loaded."""
    src = tmp_path / "in.png"
    write_image(src, np.full((12, 16, 3), 100, np.uint8), None, 8)
    _api_and_cli_say_it_before_the_model(tmp_path, capfd, src, "o.png", upscale_image)


def test_preview_face(tmp_path, capfd):
    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=2)
    missing_model = tmp_path / "no-such-model.pth"
    for dst, said in _place_cases(tmp_path, "p.png"):
        assert one_line_error(capfd, "preview", src, "--at", "0", "--model", missing_model, "-o", dst) == said
    assert (tmp_path / "p.png").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "in.mkv", "p.png"]


def test_video_faces_name_their_own_overwrite(tmp_path, capfd, near_identity_file):
    """An existing video output: the command line names its flag (``--overwrite / -y``), not the Python API's
    ``overwrite=True`` (it said both); ``upscale_video`` names ``overwrite=True``."""
    from esrgan_video.pipeline import upscale_video

    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=2)
    dst = tmp_path / "o.mkv"
    dst.write_bytes(b"old")
    model = near_identity_file(4)
    assert one_line_error(capfd, src, dst, "--model", model, "--device", "cpu") == \
        f"{dst}: already exists (use --overwrite / -y to replace it)"
    with pytest.raises(OutputError) as e:
        upscale_video(src, dst, model=str(model), device="cpu")
    assert str(e.value) == f"{dst}: already exists (pass overwrite=True to replace it)"
    assert dst.read_bytes() == b"old"


def test_video_faces_say_it_before_the_model_loads(tmp_path, capfd):
    """The CLI and ``upscale_video``, as for stills: the model named does not exist, so each error about the output's
    place comes before it is loaded (a model load can take seconds to minutes: a TensorRT build, a download)."""
    from esrgan_video.pipeline import upscale_video

    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=2)
    _api_and_cli_say_it_before_the_model(tmp_path, capfd, src, "o.mkv", upscale_video)


def test_a_device_or_named_pipe_is_never_replaced(tmp_path, capfd):
    """An output that is a named pipe or a device (here a link to /dev/null, which any user can make) is refused with
    --overwrite too, by every face, before the model loads: the finished output is renamed into place, and the rename
    put a regular file where the pipe or the device was (``-y /dev/null`` as root replaced /dev/null)."""
    src = media.make_clip(tmp_path / "in.mkv", size=(32, 24), frames=2)
    still = tmp_path / "in.png"
    write_image(still, np.full((12, 16, 3), 100, np.uint8), None, 8)
    missing_model = tmp_path / "no-such-model.pth"
    for name, kind in (("fifo", "a named pipe (FIFO)"), ("null", "a character device")):
        for ext, args in ((".mkv", (src,)), (".png", (still,)), (".png", ("preview", src, "--at", "0", "-o"))):
            dst = tmp_path / f"{name}{ext}"
            if name == "fifo":
                os.mkfifo(dst)
            else:
                dst.symlink_to("/dev/null")
            said = one_line_error(capfd, *args, dst, "--model", missing_model, "-y")
            assert said.startswith(f"{dst}: is {kind}, not a file ("), said
            assert (stat.S_ISFIFO if name == "fifo" else stat.S_ISCHR)(dst.stat().st_mode)
            dst.unlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv", "in.png"]
