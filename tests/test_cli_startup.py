"""The command answers ``-h`` and option errors without loading torch (about 2.5 s of imports on 2 cores)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
from esrgan_video.cli.main import main
try:
    code = main({argv!r})
except SystemExit as e:
    code = e.code
print("exit", code)
print("torch" in sys.modules)
"""


@pytest.mark.parametrize("argv", [["-h"], ["in.mp4", "out.mp4", "--device", "cuda:x"], ["batch", "-h"],
                                  ["train", "-h"]])
def test_help_and_option_errors_do_not_import_torch(argv):
    p = subprocess.run([sys.executable, "-c", CHECK.format(argv=argv)], capture_output=True, text=True, timeout=120)
    lines = p.stdout.split()
    assert lines[-1] == "False", (argv, p.stdout[-300:], p.stderr[-2000:])
    assert lines[-3:-1] == ["exit", "0" if argv[-1] == "-h" else "2"], (argv, p.stdout[-300:])
