"""An input that is a named pipe or a device (``mkfifo in.mp4``, ``/dev/zero``) is refused in one line naming what it
is, exit 3, by every face that reads inputs (video, still, preview, batch, training), before anything opens it: opening
a named pipe for reading waits for a writer, and every input is read more than once. (They said "the file is empty (0
bytes)", or "no such file" for a still or a batch input.)"""

from __future__ import annotations

import contextlib
import os
import re
import threading

import numpy as np
import pytest

from esrgan_video.errors import InputError
from esrgan_video.train.data import read_source, read_stills
from esrgan_video.video.images import write_image
from media import one_line_error

KINDS = {"fifo": "a named pipe (FIFO)", "zero": "a character device"}


@contextlib.contextmanager
def _never_hangs(fifo):
    """A writer opens ``fifo`` after a while if a reader is stuck opening it, so that a regression fails the test
    (the reader gets an empty input, not the message asked for) instead of hanging the suite."""
    done = threading.Event()

    def unblock():
        while not done.wait(5):
            with contextlib.suppress(OSError):  # ENXIO: nobody is reading
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    t = threading.Thread(target=unblock, daemon=True)
    t.start()
    try:
        yield
    finally:
        done.set()
        t.join()


def _special(tmp_path, name, ext):
    path = tmp_path / f"{name}{ext}"
    if name == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")  # a link to it: the name's extension is a video's or a still's
    return path


def _said(capfd, *args) -> str:
    return one_line_error(capfd, *args, code=3)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_face_names_what_the_input_is(tmp_path, capfd, name):
    video, still = _special(tmp_path, name, ".mp4"), _special(tmp_path, name, ".png")
    want = f"is {KINDS[name]}, not a file (an input is read more than once); save what it gives to a file"
    guard = contextlib.ExitStack()
    if name == "fifo":
        guard.enter_context(_never_hangs(video))
        guard.enter_context(_never_hangs(still))
    with guard:
        for args, src in (((video, tmp_path / "o.mp4"), video), ((still, tmp_path / "o.png"), still),
                          (("preview", video, "--at", "0", "-o", tmp_path / "p.png"), video),
                          (("batch", video, "-o", tmp_path / "out"), video)):
            assert _said(capfd, *args).startswith(f"{src}: {want}"), args
        for read in (lambda: read_source(str(video), max_frames=8), lambda: read_source(str(still), max_frames=8),
                     lambda: read_stills((str(still), str(still)), max_frames=8)):
            with pytest.raises(InputError, match=re.escape(f"is {KINDS[name]}, not a file")):
                read()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.mp4", f"{name}.png"]  # nothing written


def test_a_regular_still_beside_them_still_reads(tmp_path):
    """The check stats, it does not refuse a link to a regular file."""
    write_image(tmp_path / "a.png", np.full((8, 8, 3), 90, np.uint8), None, 8)
    (tmp_path / "link.png").symlink_to(tmp_path / "a.png")
    frames, keys = read_source(str(tmp_path / "link.png"), max_frames=8)
    assert keys == ["link"] and tuple(frames[0].shape) == (3, 8, 8)
