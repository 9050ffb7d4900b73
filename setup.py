#!/usr/bin/env python
"""wsis: weakly-supervised instance and panoptic segmentation on top of Detectron2.

Pure Python. detectron2 is deliberately *not* a dependency (it is not on the package registry); see README.md
for the upstream install command.
"""
import os
import re

from setuptools import find_packages, setup


def get_version():
    init = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wsis", "__init__.py")
    with open(init) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


setup(
    name="wsis",
    version=get_version(),
    author="wsis contributors",
    url="https://github.com/wsis/wsis",
    description="Weakly-supervised instance and panoptic segmentation for Detectron2",
    long_description=open("README.md").read() if os.path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    packages=find_packages(exclude=("tests", "tests.*", "benchmarks", "tools", "projects", "configs")),
    python_requires=">=3.8",
    install_requires=[
        "torch>=1.10",
        "numpy",
        "opencv-python-headless",
        "scipy",
        "pycocotools",
        "fvcore",
        "pydensecrf2",
        "scikit-image",  # Felzenszwalb superpixels of the WSPS segment proposals
        "tqdm",
        "Pillow",
    ],
    extras_require={"test": ["pytest"]},
)
