"""Model loading, checkpoint formats, the registry and cache, ncnn import and network interpolation."""

from .loading import ModelInfo, load_model, state_dict_sha256
from .registry import DEFAULT_MODEL, MODELS, ModelEntry, ModelListing, cache_dir, list_models, model_path

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelEntry",
    "ModelInfo",
    "ModelListing",
    "cache_dir",
    "list_models",
    "load_model",
    "model_path",
    "state_dict_sha256",
]
