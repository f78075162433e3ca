"""A per-token fixed-window rate limit on submissions, counted in Redis."""

import time
import uuid

import redis
import structlog

from api.errors import RateLimited, ServiceUnavailable

log = structlog.get_logger(__name__)


class SubmissionRateLimiter:
    def __init__(self, client: redis.Redis, limit: int, window_s: int) -> None:
        self.client = client
        self.limit = limit
        self.window_s = window_s

    def check(self, token_id: uuid.UUID) -> None:
        """Count one submission; raise RateLimited with Retry-After when over the limit."""
        now = time.time()
        window = int(now // self.window_s)
        key = f"ablate:ratelimit:submit:{token_id}:{window}"
        try:
            pipeline = self.client.pipeline()
            pipeline.incr(key)
            pipeline.expire(key, self.window_s + 1)
            count, _ = pipeline.execute()
        except redis.RedisError as error:
            log.error("rate_limit_unavailable", error=repr(error))
            raise ServiceUnavailable("rate limiter unavailable; retry the request later") from error

        if count > self.limit:
            retry_after_s = max(1, int((window + 1) * self.window_s - now + 0.999))
            raise RateLimited(
                f"more than {self.limit} submissions in {self.window_s} s for this token; "
                f"retry after {retry_after_s} s",
                retry_after_s=retry_after_s,
            )
