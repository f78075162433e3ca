"""Which worker errors are retried, and how long the worker waits between tries."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from sqlalchemy.exc import IntegrityError, OperationalError

from api.settings import get_settings
from worker.tasks import is_transient, retry_delay_s


def client_error(status: int, code: str) -> ClientError:
    return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (OperationalError("SELECT 1", {}, Exception("server closed the connection")), True),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True),
        (client_error(503, "SlowDown"), True),
        (client_error(500, "InternalError"), True),
        (client_error(403, "AccessDenied"), False),
        (client_error(404, "NoSuchKey"), False),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), False),
        (ValueError("bad concept"), False),
    ],
)
def test_error_classification(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_retry_delay_doubles_then_caps() -> None:
    settings = get_settings()
    delays = [retry_delay_s(retries) for retries in range(12)]

    assert delays[0] == settings.task_retry_backoff_s
    assert delays[1] == 2 * settings.task_retry_backoff_s
    assert max(delays) == settings.task_retry_backoff_max_s
    assert delays == sorted(delays)
