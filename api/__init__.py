"""The Ablate opt-out service: a FastAPI app under /v1 backed by PostgreSQL, Redis and S3."""
