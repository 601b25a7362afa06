"""``python -m esrgan_video`` is the ``esrgan-video`` command."""

import sys

from .cli.main import main

sys.exit(main())
