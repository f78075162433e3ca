"""Check that docs/api.md covers the routes the app serves, and that the guides' links resolve."""

import re
from pathlib import Path

from api.main import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
ROUTE_HEADING = re.compile(r"^### (GET|POST|PUT|PATCH|DELETE) (/\S+)$", re.MULTILINE)
LINK = re.compile(r"\]\(([\w.-]+\.md)?(?:#([\w-]+))?\)")


def served_routes() -> set[tuple[str, str]]:
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, item in paths.items() for method in item if method in HTTP_METHODS}


def documented_routes() -> set[tuple[str, str]]:
    return set(ROUTE_HEADING.findall((DOCS / "api.md").read_text()))


def heading_anchors(text: str) -> set[str]:
    """Return GitHub's heading anchors: lowercase, spaces as '-', punctuation but '-' and '_' dropped."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", text, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
        anchors.add(slug.replace(" ", "-"))
    return anchors


def test_api_doc_covers_every_route() -> None:
    documented = documented_routes()
    for method, path in sorted(served_routes()):
        assert (method, path) in documented, f"docs/api.md has no '### {method} {path}' section"


def test_api_doc_has_no_stale_routes() -> None:
    served = served_routes()
    for method, path in sorted(documented_routes()):
        assert (method, path) in served, f"docs/api.md documents {method} {path}, which the API does not serve"


def test_api_doc_curls_local_api() -> None:
    text = (DOCS / "api.md").read_text()
    for method, path in sorted(documented_routes()):
        section = text.split(f"### {method} {path}\n", 1)[1].split("\n### ", 1)[0]
        assert "curl" in section, f"docs/api.md: {method} {path} has no curl example"
    hosts = set(re.findall(r"https?://([\w.-]+(?::\d+)?)/v1", text))
    assert hosts == {"127.0.0.1:8000"}, f"docs/api.md calls the API at {sorted(hosts)}, expected 127.0.0.1:8000"


def test_doc_links_resolve() -> None:
    for name in ("api.md", "operations.md"):
        for target, anchor in LINK.findall((DOCS / name).read_text()):
            linked = DOCS / (target or name)
            assert linked.is_file(), f"docs/{name} links to {target}, which does not exist"
            if anchor:
                assert anchor in heading_anchors(linked.read_text()), (
                    f"docs/{name} links to {target or name}#{anchor}, which has no such heading"
                )
