"""The command-line faces of esrgan-video, each a thin shell over the library.

``main`` dispatches ``esrgan-video IN OUT`` and its subcommands (preview, models, engine, batch, demo, train,
blend).
"""

from .main import main

__all__ = ["main"]
