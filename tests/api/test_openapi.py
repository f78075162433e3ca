"""The OpenAPI document: every route is under /v1 and documented by its docstring."""

from fastapi.testclient import TestClient


def test_every_route_has_description(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()

    operations = [
        (path, method, operation)
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]
    assert len(operations) >= 20
    for path, method, operation in operations:
        assert path.startswith("/v1/"), path
        assert operation.get("description"), f"{method.upper()} {path} has no docstring"
