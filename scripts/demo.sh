#!/usr/bin/env bash
# Set up a fresh machine and run the main job: an opt-out request through the local service
# (PostgreSQL, Redis, SeaweedFS, API, one Celery worker) to a downloaded, applied model version.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# torch is pinned in the same command, or pip resolves a multi-GB CUDA build.
.venv/bin/pip install --quiet torch==2.13.0 -e ".[local]"

exec .venv/bin/python -m api.demo "$@"
