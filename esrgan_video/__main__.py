"""``python -m esrgan_video`` is the ``esrgan-video`` command."""

import sys

from .cli import main

sys.exit(main())
