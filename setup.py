"""keras_resnets: the residual-network family for Keras 3 / TensorFlow."""

import pathlib
import re

from setuptools import find_packages, setup

here = pathlib.Path(__file__).parent
version = re.search(
    r'^__version__ = "([^"]+)"', (here / "keras_resnets" / "__init__.py").read_text(), re.M
).group(1)

setup(
    name="keras_resnets",
    version=version,
    description=(
        "ResNet, ResNetV2, ResNeXt, wide and CIFAR ResNets for Keras 3: exact "
        "parity with torchvision and keras.applications, fast grouped convolutions."
    ),
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_resnets", "keras_resnets.*"]),
    package_data={"keras_resnets.weights": ["imagenet_classes.txt"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<3.16",
        "tensorflow-datasets>=4.9",
        "keras-tuner>=1.4",
        "numpy",
        "scikit-learn",
        "matplotlib",
        "tensorboard",
        "safetensors",
        # keras_resnets.export runs .tflite files in the LiteRT interpreter
        # (tf.lite.Interpreter is deprecated); small: numpy, protobuf, flatbuffers.
        "ai-edge-litert>=2.0",
    ],
    entry_points={"console_scripts": ["keras-resnets=keras_resnets.cli:main"]},
    extras_require={
        # jax: the layer and model tests also run on Keras's JAX backend
        # (tests/test_jax_backend.py; small, CPU only).
        "test": ["pytest>=7", "pytest-xdist>=3", "pydot", "keras-hub>=0.32", "jax"],
        # keras-hub's task models (DeepLabV3, RetinaNet) on keras_resnets
        # backbones (keras_resnets.keras_hub).
        "keras-hub": ["keras-hub>=0.32"],
        # keras-resnets info NAME --plot FILE.png; also needs graphviz's `dot`
        # program from the system (apt-get install graphviz).
        "plot": ["pydot"],
        # For the torchvision parity tests (large; not installed by CI):
        # pip install torch torchvision
        "torch": ["torch", "torchvision", "timm", "fvcore"],
        # keras-resnets export --format onnx: tf2onnx converts, onnxruntime verifies.
        "onnx": ["tf2onnx", "onnx", "onnxruntime"],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Framework :: Keras",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
