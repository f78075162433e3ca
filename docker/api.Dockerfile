# The API image: FastAPI under uvicorn on port 8000. The same image runs the database
# migrations (alembic upgrade head) and the admin CLI (python -m api.cli).
#
#   docker build -f docker/api.Dockerfile -t ablate-api .
#
# The API never runs a model, but torch is a dependency of the project, so the image
# carries the CPU build: PyPI's Linux torch wheel would pull several GB of CUDA libraries.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1

WORKDIR /app

# 1. CPU torch from the PyTorch index, at the version pyproject.toml pins.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0

# 2. The dependencies at the versions in docker/constraints.txt, in their own layer. The
#    installed torch 2.13.0+cpu satisfies torch==2.13.0 (pip ignores the +cpu local
#    label when it matches), so pip keeps it.
COPY pyproject.toml README.md docker/project_dependencies.py docker/constraints.txt /tmp/build/
RUN python /tmp/build/project_dependencies.py /tmp/build/pyproject.toml > /tmp/build/requirements.txt \
    && pip install -c /tmp/build/constraints.txt -r /tmp/build/requirements.txt

# 3. The project itself; --no-deps because step 2 installed every dependency.
COPY pyproject.toml README.md alembic.ini ./
COPY ablation_core ./ablation_core
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
RUN pip install --no-deps . \
    && python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"

# 4. Run as an unprivileged user, with a home folder for the caches that libraries
#    create there. The API writes nothing else to local disk.
RUN useradd --system --uid 10001 --create-home --home-dir /home/ablate --shell /usr/sbin/nologin ablate
USER ablate

EXPOSE 8000

# /v1/health returns 200 when the API reaches PostgreSQL and 503 otherwise; urlopen
# raises on 503, so the check fails. The slim image has no curl.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/v1/health', timeout=4)"]

# --no-access-log: the app logs every request itself, with its request id.
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log"]
