"""oasis_tf: OASIS semantic image synthesis in Keras 3 / TensorFlow."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent

setup(
    name="oasis_tf",
    version="0.1.0",
    description=(
        "Keras 3 / TensorFlow implementation of OASIS, 'You Only Need Adversarial "
        "Supervision for Semantic Image Synthesis' (ICLR 2021)"
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(exclude=["tests", "tests.*", "tools", "tools.*"]),
    # The presets (oasis_tf/configs/*.yaml) travel with the package: the commands of a
    # regular install find them where the checkout is not.
    package_data={"oasis_tf": ["configs/*.yaml"]},
    # `pip install oasis_tf` gives the commands; tools/*.py of a checkout call the same.
    entry_points={"console_scripts": [
        f"oasis-{name}=oasis_tf.cli.{module}:run" for name, module in (
            ("train", "train"), ("generate", "generate"), ("evaluate", "evaluate"),
            ("export", "export"), ("convert", "convert"), ("tflite", "tflite"),
            ("studio", "studio"), ("demo", "demo"), ("inspect-data", "inspect_data"),
            ("serving-client", "serving_client"))]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "keras>=3.3,<4",
        "tensorflow-datasets>=4.9,<5",
        "numpy>=1.26,<3",
        "pillow>=10,<14",
        "absl-py>=2,<3",
        "scipy>=1.11,<2",
        "pyyaml>=6,<7",
        # TensorFlow 2.21 no longer pulls TensorBoard in; the runs write tf.summary events for it.
        "tensorboard>=2.16,<2.22",
        # Loss / FID curves and the per-class IoU chart of an evaluation.
        "matplotlib>=3.7,<4",
    ],
    extras_require={
        # Only to read official .pth checkpoints. Install a CPU build: an unpinned
        # torch pulls a multi-GB CUDA build.
        "torch": ["torch>=2.1,<2.15"],
        "litert": ["ai-edge-litert>=1.0,<3"],
        # REST/gRPC client of tools/serving_client.py; pins tensorflow like ours.
        "serving": ["tensorflow-serving-api>=2.16,<2.22"],
        # OASIS Studio (tools/studio.py): the Gradio page and its Python client.
        "studio": ["gradio>=6.0,<7", "gradio_client>=2.0,<3"],
        # The tests run the TFLite files in the LiteRT interpreter when it is there;
        # the studio's browser test drives Debian's chromium with Playwright (no
        # browser download: .ci/run installs chromium with apt-get).
        "test": ["pytest>=8,<10", "pytest-xdist>=3.8,<4", "ai-edge-litert>=1.0,<3", "playwright>=1.40,<2"],
    },
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
