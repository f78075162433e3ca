# The GPU worker image: one Celery worker process that runs ablation jobs on one GPU.
#
#   docker build -f docker/worker.Dockerfile -t ablate-worker .
#
# The base image brings Python, CUDA, cuDNN and a CUDA build of torch. Its torch version
# must be the one pyproject.toml pins (torch==2.13.0); step 2 fails the build otherwise.
# NOTE: this tag was not pulled when the file was written (the build machines have no
# Docker engine). If it does not exist, pass another with the same torch version:
#   docker build --build-arg PYTORCH_IMAGE=pytorch/pytorch:<tag> ...
ARG PYTORCH_IMAGE=pytorch/pytorch:2.13.0-cuda12.8-cudnn9-runtime
FROM ${PYTORCH_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1

WORKDIR /app

# 1. Record the base image's torch build, e.g. "torch==2.13.0+cu128", as a constraint.
# 2. Install the dependencies with that constraint and docker/constraints.txt. The
#    requirement torch==2.13.0 from pyproject.toml is already satisfied by the installed
#    CUDA build, and the constraint forbids any other build, so pip either keeps the base
#    image's torch or stops with a resolution error; it never downloads a torch wheel.
#    docker/constraints.txt does not list torch for the same reason.
COPY pyproject.toml README.md docker/project_dependencies.py docker/constraints.txt /tmp/build/
RUN echo "torch==$(python -c 'import torch; print(torch.__version__)')" > /tmp/build/base-torch.txt \
    && python /tmp/build/project_dependencies.py /tmp/build/pyproject.toml > /tmp/build/requirements.txt \
    && pip install -c /tmp/build/base-torch.txt -c /tmp/build/constraints.txt -r /tmp/build/requirements.txt \
    && python -c "import torch; assert torch.version.cuda, 'the base image torch has no CUDA'"

# 3. The project itself; --no-deps because step 2 installed every dependency.
COPY pyproject.toml README.md alembic.ini ./
COPY ablation_core ./ablation_core
COPY api ./api
COPY worker ./worker
COPY migrations ./migrations
RUN pip install --no-deps .

# 4. Run as an unprivileged user, with a home folder for the caches that torch and the
#    Hugging Face libraries create there. The base model cache (ABLATE_MODEL_CACHE_DIR)
#    and the job folders (ABLATE_WORK_DIR) live under /var/lib/ablate. docker-compose.yml
#    mounts a volume there, and a new volume takes the owner of this folder.
RUN useradd --system --uid 10001 --create-home --home-dir /home/ablate --shell /usr/sbin/nologin ablate \
    && mkdir -p /var/lib/ablate/model-cache /var/lib/ablate/jobs \
    && chown -R ablate /var/lib/ablate
USER ablate

ENV ABLATE_MODEL_CACHE_DIR=/var/lib/ablate/model-cache \
    ABLATE_WORK_DIR=/var/lib/ablate/jobs

# The worker answers a ping from its main process, also while its pool process trains.
HEALTHCHECK --interval=60s --timeout=30s --start-period=60s --retries=3 \
    CMD celery -A worker.celery_app inspect ping --destination "worker@$HOSTNAME" --timeout 20

# One process per GPU (--concurrency 1), and each process takes one job at a time
# (--prefetch-multiplier 1), so a long job never holds a second one back.
CMD ["celery", "-A", "worker.celery_app", "worker", "--concurrency", "1", "--prefetch-multiplier", "1", \
     "--queues", "ablation", "--hostname", "worker@%h", "--loglevel", "INFO"]
