"""Print docker/constraints.txt: exact versions of the project's dependency closure.

    python docker/freeze_constraints.py > docker/constraints.txt

Run it with the environment in which the project was installed and tested. It walks
pyproject.toml's dependencies (with their extras) through the installed distributions'
metadata and pins each one at its installed version. torch and setuptools are left out,
because each image brings its own torch build and pip brings setuptools.
"""

import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
UNPINNED = {"torch", "setuptools"}

HEADER = """\
# Exact versions of the project's dependencies and everything they pull in, for the
# Docker images (pip install -c docker/constraints.txt). They are the versions that were
# installed together and tested. Regenerate them with docker/freeze_constraints.py.
#
# torch is not listed: the API image installs the CPU build of the torch version that
# pyproject.toml pins, and the worker image keeps the CUDA build of its base image.
"""


def installed_closure(requirements: list[str]) -> dict[str, str]:
    """Return {name: installed version} for the requirements and all their dependencies."""
    versions: dict[str, str] = {}
    visited: set[tuple[str, tuple[str, ...]]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        key = (canonicalize_name(requirement.name), tuple(sorted(requirement.extras)))
        if key in visited:
            continue
        visited.add(key)

        try:
            distribution = importlib.metadata.distribution(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            sys.exit(f"{requirement.name} is not installed; install the project first")
        versions[key[0]] = distribution.version

        # A dependency counts when its marker is true without extras or with one of the
        # extras this requirement asked for, e.g. psycopg[binary] -> psycopg-binary.
        for text in distribution.requires or []:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": extra}) for extra in (*requirement.extras, "")):
                pending.append(dependency)
    return versions


def main() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    versions = installed_closure(project["dependencies"])
    print(HEADER)
    for name in sorted(versions):
        if name not in UNPINNED:
            print(f"{name}=={versions[name]}")


if __name__ == "__main__":
    main()
