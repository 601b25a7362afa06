"""The one helper that quotes a library's error inside one of ours (``errors.first_line`` / ``errors.brief``)."""

from esrgan_video.errors import brief, first_line


def test_first_line_skips_blank_lines_collapses_whitespace_and_cuts():
    e = OSError("\n   libnvinfer.so.10:   cannot open\tshared object\nTraceback (most recent call last):\n  ...")
    assert first_line(e) == "libnvinfer.so.10: cannot open shared object"
    assert brief(e) == "OSError: libnvinfer.so.10: cannot open shared object"
    assert first_line(e, limit=12) == "libnvinfe..."
    assert len(first_line(RuntimeError("x" * 500), limit=160)) == 160


def test_an_empty_message_gives_the_type_alone_and_never_an_index_error():
    assert first_line(RuntimeError()) == "" and first_line(RuntimeError("\n \n")) == ""
    assert brief(RuntimeError()) == "RuntimeError"
    assert brief(KeyError("model.0.weight")) == "KeyError: 'model.0.weight'"
