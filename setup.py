#!/usr/bin/env python
"""wsis: weakly-supervised instance and panoptic segmentation on top of Detectron2.

Pure Python. detectron2 is deliberately *not* a dependency (it is not on the package registry); see README.md
for the upstream install command.
"""
import glob
import os
import re
import shutil

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def get_version():
    init = os.path.join(HERE, "wsis", "__init__.py")
    with open(init) as f:
        return re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)


def model_zoo_configs():
    """
    Mirror ``configs/`` and ``projects/<P>/configs/`` into ``wsis/model_zoo/configs/`` (links, made again at every
    build, git-ignored) in the checkout's layout, so that an installed wsis carries its configs as package data and
    their relative ``_BASE_`` paths still resolve (``wsis.model_zoo``). From an sdist, which holds the mirror as
    files, it is kept. Returns the package-data paths.
    """
    dest = os.path.join(HERE, "wsis", "model_zoo", "configs")
    sources = ["configs"] + sorted(
        os.path.relpath(p, HERE) for p in glob.glob(os.path.join(HERE, "projects", "*", "configs")))
    if os.path.isdir(os.path.join(HERE, "configs")):
        if os.path.islink(dest) or os.path.isfile(dest):
            os.unlink(dest)
        elif os.path.isdir(dest):
            shutil.rmtree(dest)
        for rel in sources:
            link = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(os.path.relpath(os.path.join(HERE, rel), os.path.dirname(link)), link)
    files = glob.glob(os.path.join(dest, "**", "*.yaml"), recursive=True)
    return sorted(os.path.relpath(f, os.path.join(HERE, "wsis", "model_zoo")) for f in files)


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
    package_data={"wsis.model_zoo": model_zoo_configs()},
    python_requires=">=3.8",
    install_requires=[
        "torch>=1.10",
        "numpy",
        "opencv-python-headless",
        "scipy",
        "pycocotools",
        "fvcore",
        "pydensecrf2",
        "iopath",  # the wsis:// checkpoint paths (fvcore's and detectron2's PathManager)
        "scikit-image",  # Felzenszwalb superpixels of the WSPS segment proposals
        "tqdm",
        "Pillow",
    ],
    # wheel: the test that installs wsis non-editably builds it with the venv's setuptools (bdist_wheel before 70.1)
    extras_require={"test": ["pytest", "wheel"]},
)
