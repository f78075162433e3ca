#!/usr/bin/env bash
# Create the virtual environment if needed, install the project, and run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch is pinned in the same command, or pip resolves a multi-GB CUDA build.
.venv/bin/pip install --quiet torch==2.13.0 -e ".[local,test]"

exec .venv/bin/python -m pytest -m "not slow" "$@"
