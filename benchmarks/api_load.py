"""Load benchmark of the opt-out API: submissions and status polls from concurrent clients.

Run it against the local stack (`python -m api.stack up`), from the repository root:

    python -m benchmarks.api_load --clients 50 --submissions 10 --polls 40

It creates an admin token with the stack's settings (or takes --admin-token), registers a
model, gives every client its own creator account, and then measures two phases on
loopback: each client submits its requests (POST /v1/opt-out-requests), then polls them
(GET /v1/opt-out-requests/{id}). Each phase stops after its request count or after
--max-seconds, whichever comes first. It prints throughput and p50/p99 latency per phase.
"""

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
import uuid
from dataclasses import dataclass, field

import httpx

from api.stack import read_env_file, load_state


@dataclass
class PhaseResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def summary(self) -> dict[str, float | int | str]:
        ordered = sorted(self.latencies_ms)
        count = len(ordered)
        return {
            "phase": self.name,
            "requests": count,
            "errors": sum(self.errors.values()),
            "throughput_rps": round(count / self.wall_s, 1) if self.wall_s else 0.0,
            "p50_ms": round(percentile(ordered, 50), 1),
            "p99_ms": round(percentile(ordered, 99), 1),
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else 0.0,
        }


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def admin_token_from_stack() -> str:
    """Create an admin token with the stack's settings, as `python -m api.cli` would."""
    os.environ.update(read_env_file())
    from api.cli import create_token
    from api.auth.tables import Role

    return create_token("bench-admin", Role.ADMIN, label="benchmark")


async def setup(client: httpx.AsyncClient, admin_token: str, clients: int) -> tuple[str, list[str]]:
    admin = {"Authorization": f"Bearer {admin_token}"}
    response = await client.post(
        "/v1/models",
        json={"name": f"bench-{uuid.uuid4().hex[:8]}", "family": "sd1", "weights_path": "/models/bench"},
        headers=admin,
    )
    response.raise_for_status()
    model_id = response.json()["id"]
    tokens = []
    for index in range(clients):
        response = await client.post(
            "/v1/auth/accounts", json={"name": f"bench-{uuid.uuid4().hex[:10]}-{index}"}, headers=admin
        )
        response.raise_for_status()
        tokens.append(response.json()["token"])
    return model_id, tokens


async def timed(result: PhaseResult, call) -> httpx.Response | None:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    try:
        response = await call()
    except httpx.HTTPError as error:
        result.errors[type(error).__name__] = result.errors.get(type(error).__name__, 0) + 1
        return None
    result.latencies_ms.append((time.perf_counter() - started) * 1000)
    if response.status_code >= 400:
        key = str(response.status_code)
        result.errors[key] = result.errors.get(key, 0) + 1
    return response


async def submit_client(
    client: httpx.AsyncClient, token: str, model_id: str, count: int, deadline: float, result: PhaseResult
) -> list[str]:
    headers = {"Authorization": f"Bearer {token}"}
    ids = []
    for index in range(count):
        if time.monotonic() > deadline:
            break
        body = {
            "model_id": model_id,
            "concept_kind": "instance",
            "target_concept": f"object {uuid.uuid4().hex[:12]}",
            "anchor_concept": "object",
            "contact": "bench@example.com",
            "justification": "load benchmark",
        }
        response = await timed(
            result,
            lambda: client.post(
                "/v1/opt-out-requests", json=body, headers={**headers, "Idempotency-Key": f"bench-{index}-{uuid.uuid4().hex}"}
            ),
        )
        if response is not None and response.status_code in (200, 201):
            ids.append(response.json()["id"])
    return ids


async def poll_client(
    client: httpx.AsyncClient, token: str, ids: list[str], count: int, deadline: float, result: PhaseResult
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for index in range(count):
        if time.monotonic() > deadline or not ids:
            break
        request_id = ids[index % len(ids)]
        await timed(result, lambda: client.get(f"/v1/opt-out-requests/{request_id}", headers=headers))


async def run(args: argparse.Namespace) -> list[dict]:
    limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
    async with httpx.AsyncClient(base_url=args.base_url, limits=limits, timeout=30) as client:
        model_id, tokens = await setup(client, args.admin_token, args.clients)

        submit = PhaseResult("submit")
        deadline = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        id_lists = await asyncio.gather(
            *(submit_client(client, token, model_id, args.submissions, deadline, submit) for token in tokens)
        )
        submit.wall_s = time.perf_counter() - started

        poll = PhaseResult("poll")
        deadline = time.monotonic() + args.max_seconds
        started = time.perf_counter()
        await asyncio.gather(
            *(poll_client(client, token, ids, args.polls, deadline, poll) for token, ids in zip(tokens, id_lists))
        )
        poll.wall_s = time.perf_counter() - started
    return [submit.summary() | {"error_kinds": submit.errors}, poll.summary() | {"error_kinds": poll.errors}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", help="API root (default: the local stack's API)")
    parser.add_argument("--admin-token", help="admin token (default: create one with the stack's settings)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default: 50)")
    parser.add_argument("--submissions", type=int, default=10, help="submissions per client (default: 10)")
    parser.add_argument("--polls", type=int, default=40, help="status polls per client (default: 40)")
    parser.add_argument("--max-seconds", type=float, default=60.0, help="time bound per phase, s (default: 60)")
    args = parser.parse_args()

    args.base_url = args.base_url or load_state().get("api", {}).get("url")
    if not args.base_url:
        parser.error("no local stack found; start it with `python -m api.stack up` or pass --base-url")
    args.admin_token = args.admin_token or admin_token_from_stack()

    results = asyncio.run(run(args))
    print(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
                      "clients": args.clients, "results": results}, indent=2))
    print("| phase | requests | errors | throughput (req/s) | p50 (ms) | p99 (ms) |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['phase']} | {row['requests']} | {row['errors']} | {row['throughput_rps']} | {row['p50_ms']} | {row['p99_ms']} |")


if __name__ == "__main__":
    main()
