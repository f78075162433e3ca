"""Print pyproject.toml's dependencies, one requirement a line, for `pip install -r`.

The images install the dependencies in a layer of their own, before the source is
copied, so a change to the code does not reinstall them.

    python docker/project_dependencies.py pyproject.toml > requirements.txt
"""

import sys
import tomllib
from pathlib import Path


def main(pyproject: str) -> None:
    project = tomllib.loads(Path(pyproject).read_text())["project"]
    for requirement in project["dependencies"]:
        print(requirement)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")
