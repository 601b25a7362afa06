"""An output that is a symbolic link is written through, as ``ffmpeg -y`` does (``files.link_target``): the finished
file is renamed onto the file the link leads to, so the link stays and leads to the new output (the rename onto the
link's own name put a regular file where the link was). Every writer: the video writer, still images, the preview
sheet, segment joins, ``files.atomic_write``. A broken link is written through where its folder exists; a broken link
into a missing folder and a link loop are one-line errors, exit 6, with nothing written."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest

import media
from esrgan_video.errors import OutputError
from esrgan_video.files import atomic_write
from esrgan_video.testing import run_cli
from esrgan_video.video.images import read_image, write_image
from esrgan_video.video.reader import open_input
from esrgan_video.video.segment_join import join_segments
from esrgan_video.video.writer import OutputVideo


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("links_in")
    still = d / "in.png"
    write_image(still, np.full((12, 16, 3), 100, np.uint8), None, 8)
    return media.make_clip(d / "in.mkv", size=(32, 24), frames=2), still


def _link(tmp_path, name, to, old=b"old"):
    if old is not None:
        (tmp_path / to).write_bytes(old)
    (tmp_path / name).symlink_to(to)
    return tmp_path / name


def _written_through(tmp_path, link, to, names):
    """The link is still a link to ``to``; the file there is the new output; nothing else was left beside them."""
    assert link.is_symlink() and os.readlink(link) == to
    assert (tmp_path / to).read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)


def test_every_command_line_face_writes_through_a_link(tmp_path, capfd, inputs, near_identity_file):
    clip, still = inputs
    model = near_identity_file(2, nf=4, nb=1, gc=2)
    faces = [("video.mkv", "real.mkv", (clip,)), ("still.png", "real.png", (still,)),
             ("sheet.png", "sheet-real.png", ("preview", clip, "--at", "0", "-o"))]
    names = []
    for name, to, args in faces:
        link = _link(tmp_path, name, to)
        p = run_cli(capfd, *args, link, "--model", model, "-y")
        assert p.returncode == 0, p.stderr
        names += [name, to]
        _written_through(tmp_path, link, to, names)
    with av.open(str(tmp_path / "real.mkv")) as c:
        assert (c.streams.video[0].width, len(list(c.decode(video=0)))) == (64, 2)
    assert read_image(tmp_path / "real.png")[0].shape == (24, 32, 3)


def test_a_broken_link_is_written_through_where_its_folder_is(tmp_path, capfd, inputs, near_identity_file):
    clip, still = inputs
    model = near_identity_file(2, nf=4, nb=1, gc=2)
    for name, to, src in (("v.mkv", "new.mkv", clip), ("s.png", "new.png", still)):
        link = _link(tmp_path, name, to, old=None)
        p = run_cli(capfd, src, link, "--model", model)  # the link's file does not exist: no -y needed, as ffmpeg
        assert p.returncode == 0, p.stderr
        assert link.is_symlink() and (tmp_path / to).stat().st_size > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.mkv", "new.png", "s.png", "v.mkv"]


def test_a_link_loop_or_into_no_folder_is_one_line(tmp_path, capfd, inputs, near_identity_file):
    clip, still = inputs
    (tmp_path / "a.mkv").symlink_to("b.mkv")
    (tmp_path / "b.mkv").symlink_to("a.mkv")
    (tmp_path / "gone.png").symlink_to("nowhere/x.png")
    for src, dst, said in ((clip, "a.mkv", "is a symbolic link loop"),
                           (still, "gone.png", f"is a broken symbolic link to nowhere/x.png, and the directory "
                                               f"{tmp_path / 'nowhere'} does not exist")):
        p = run_cli(capfd, src, tmp_path / dst, "--model", near_identity_file(2, nf=4, nb=1, gc=2), "-y")
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert p.returncode == 6 and lines == [f"esrgan-video: error: {tmp_path / dst}: {said}" +
                                               ("; name a file" if dst == "a.mkv" else "")], p.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mkv", "b.mkv", "gone.png"]
    with pytest.raises(OutputError, match="symbolic link loop"):
        atomic_write(tmp_path / "a.mkv", b"x")


def test_atomic_write_and_the_segment_join_write_through(tmp_path, inputs):
    clip, _ = inputs
    link = _link(tmp_path, "record.json", "real.json")
    assert atomic_write(link, b"{}") == link
    _written_through(tmp_path, link, "real.json", ["record.json", "real.json"])
    part = tmp_path / "seg" / "part0.mkv"
    part.parent.mkdir()
    with open_input(clip) as inp, OutputVideo(part, template=inp, copy_streams=False) as out:
        for f in inp.frames():
            out.write(f.planes, f.pts)
    joined = _link(tmp_path, "joined.mkv", "joined-real.data")  # the muxer is the link's name's, not its file's
    join_segments(clip, [part], joined, overwrite=True)
    _written_through(tmp_path, joined, "joined-real.data", ["record.json", "real.json", "seg", "joined.mkv",
                                                            "joined-real.data"])
    with av.open(str(tmp_path / "joined-real.data")) as c:
        assert c.format.name == "matroska,webm" and len(list(c.decode(video=0))) == 2


def test_a_download_writes_through_a_link(tmp_path):
    """A model file in the cache that is a link (to a shared models folder) is fetched again into the link's file,
    over real HTTP from 127.0.0.1."""
    from esrgan_video.models.download import download

    served = tmp_path / "served"
    served.mkdir()
    (served / "w.pth").write_bytes(b"weights" * 100)
    cache, shared = tmp_path / "cache", tmp_path / "shared"
    cache.mkdir(), shared.mkdir()
    (shared / "w.pth").write_bytes(b"old")
    (cache / "w.pth").symlink_to(shared / "w.pth")
    with media.serving(served) as url:
        download(f"{url}/w.pth", cache / "w.pth", progress=False, retries=0)
    assert (cache / "w.pth").is_symlink() and (shared / "w.pth").read_bytes() == b"weights" * 100
    assert [p.name for p in cache.iterdir()] == ["w.pth"] and [p.name for p in shared.iterdir()] == ["w.pth"]


def test_the_partials_of_a_link_are_found_by_its_name(tmp_path):
    """What batch's clean-up asks (``remove_partials(job.dst)``, ``partials_of``) finds the temporary files a writer
    of a link left beside the link's file, where the writers now put them."""
    from esrgan_video.video.partials import partial_path, partials_of, remove_partials

    (tmp_path / "films").mkdir()
    link = _link(tmp_path, "out.mkv", "films/real.mkv")
    left = partial_path(tmp_path / "films" / "real.mkv", pid=4242)
    left.write_bytes(b"half")
    assert partials_of(link) == [(left, 4242)]
    assert remove_partials(link) == [left] and not left.exists() and link.is_symlink()
