from setuptools import find_packages, setup

setup(
    name="esrgan-video",
    version="0.1.0",
    description="ESRGAN (RRDB) video upscaler: TensorRT/PyTorch runtime, PyAV streaming core, CLI and VapourSynth filter",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.12",
    packages=find_packages(include=["esrgan_video", "esrgan_video.*"])
    + find_packages("plugins", include=["vsesrgan", "vsesrgan.*"]),
    package_dir={"vsesrgan": "plugins/vsesrgan"},
    install_requires=[
        "torch>=2.4",
        "numpy>=1.26",
        "av>=14",
        "tqdm>=4.66",
        "safetensors>=0.4",
        "onnxruntime>=1.17",  # the fastest CPU backend (auto picks it on the CPU)
        "onnx>=1.16",
    ],
    extras_require={
        # The ONNX -> TensorRT backend needs only TensorRT's own wheels; they never touch torch.
        "tensorrt": ["tensorrt>=10.12,<12", "onnx>=1.16"],
        # torch-tensorrt X.Y pins torch to X.Y.* (v2.12: torch>=2.12.0,<2.13.0, tensorrt>=10.16.1,<10.17.0), so an
        # unpinned torch-tensorrt makes pip replace torch. Pinned to the torch minor this project is tested with;
        # import_torch_tensorrt() refuses any other pair with one line.
        "torch-tensorrt": ["torch-tensorrt>=2.14,<2.15", "torch>=2.14,<2.15"],
        "vapoursynth": ["vapoursynth>=70", "vapoursynth-bestsource>=22"],
        "ray": ["ray>=2.9"],
        "dev": [
            "pytest>=8",
            "spandrel>=0.4",
            "ncnn>=1.0.20240410",
            "onnx>=1.16",
            "onnxruntime>=1.18",
            "scikit-image>=0.22",
            "ray>=2.9",
            "pillow>=10",  # test oracle: a real libjpeg for the training JPEG (tests/test_train_degradations.py)
        ],
    },
    data_files=[("share/esrgan-video/engines", ["engines/presets.json"])],
    entry_points={"console_scripts": ["esrgan-video=esrgan_video.cli:main"]},
)
