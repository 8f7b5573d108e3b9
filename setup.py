"""The one thing pyproject.toml cannot say: the stage folders at the repository root install as subpackages of
`atomforge` (pipeline/ -> atomforge.pipeline, ...), so the folder layout stays and site-packages holds one name."""
from setuptools import find_namespace_packages, find_packages, setup

STAGES = ("pipeline", "data_prep", "configs")
# configs/ is a tree of YAML folders: each is package data, found as a namespace package
CODE = find_packages(include=["pipeline*", "data_prep*"])
YAML = find_namespace_packages(include=["configs*"], exclude=["*__pycache__*"])

setup(
    packages=["atomforge"] + [f"atomforge.{p}" for p in CODE + YAML],
    package_dir={"atomforge": "atomforge", **{f"atomforge.{s}": s for s in STAGES}},
)
