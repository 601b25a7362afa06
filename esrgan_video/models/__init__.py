"""Model loading, detection (ESRGAN family and the compact model), the model descriptor, the registry and cache,
ncnn import and network interpolation."""

from .descriptor import ModelDescriptor, describe
from .loading import ModelInfo, load_model, state_dict_sha256
from .registry import DEFAULT_MODEL, MODELS, ModelEntry, ModelListing, cache_dir, list_models, model_path

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "ModelDescriptor",
    "ModelEntry",
    "ModelInfo",
    "ModelListing",
    "cache_dir",
    "describe",
    "list_models",
    "load_model",
    "model_path",
    "state_dict_sha256",
]
