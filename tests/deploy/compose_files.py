"""Readers for docker-compose.yml, .env.example, the Dockerfiles and .dockerignore.

No Docker engine runs where the tests run, so these helpers do the small part of
Compose's work that the consistency tests need: `${VAR}` interpolation, environment
blocks and Dockerfile instructions.
"""

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}; $$ is a literal $.
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<operator>:?[-?])?(?P<argument>[^}]*)\}")


def load_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def load_env_example() -> dict[str, str]:
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def placeholder_names() -> list[str]:
    """Names of the .env.example variables whose comment marks them PLACEHOLDER."""
    names = []
    marked = False
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.startswith("#"):
            marked = marked or "PLACEHOLDER" in line
        elif "=" in line:
            if marked:
                names.append(line.split("=", 1)[0].strip())
            marked = False
    return names


def interpolate(text: str, env: dict[str, str]) -> str:
    """Substitute variables as Compose does; a missing `:?` variable raises KeyError."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.group("name", "operator", "argument")
        value = env.get(name)
        if operator in (":-", "-"):
            missing = value is None or (operator == ":-" and value == "")
            return argument if missing else value  # type: ignore[return-value]
        if operator in (":?", "?"):
            if value is None or (operator == ":?" and value == ""):
                raise KeyError(f"{name} is required: {argument}")
            return value
        return value or ""

    return VARIABLE.sub(substitute, text)


def interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    return node


def referenced_variables(node: Any) -> set[str]:
    """Every variable name the compose tree interpolates."""
    if isinstance(node, str):
        return {match.group("name") for match in VARIABLE.finditer(node) if match.group("name")}
    if isinstance(node, list):
        return set().union(*(referenced_variables(item) for item in node)) if node else set()
    if isinstance(node, dict):
        return set().union(*(referenced_variables(value) for value in node.values())) if node else set()
    return set()


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment block as a dict, from either Compose form."""
    block = service.get("environment") or {}
    if isinstance(block, list):
        block = dict(item.split("=", 1) if "=" in item else (item, "") for item in block)
    return {str(key): "" if value is None else str(value) for key, value in block.items()}


def command(service: dict[str, Any]) -> list[str]:
    value = service.get("command") or []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def option(arguments: list[str], *names: str) -> str | None:
    """The value of `--name value`, `--name=value` or `-name=value` in a command line."""
    for index, argument in enumerate(arguments):
        for name in names:
            if argument == name and index + 1 < len(arguments):
                return arguments[index + 1]
            if argument.startswith(name + "="):
                return argument.split("=", 1)[1]
    return None


def healthcheck_text(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test") or []
    if isinstance(test, str):
        return test
    return " ".join(str(part) for part in test[1:])  # drop "CMD" or "CMD-SHELL"


@dataclass
class Instruction:
    keyword: str
    arguments: str


def read_dockerfile(path: Path) -> list[Instruction]:
    """Instructions of a Dockerfile, with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), arguments.strip()))
    return instructions


def instruction_words(arguments: str) -> list[str]:
    """Split exec form (a JSON array) or shell form into words."""
    if arguments.startswith("["):
        return json.loads(arguments)
    return shlex.split(arguments)


def copy_sources(instruction: Instruction) -> list[str]:
    """Sources of a COPY or ADD from the build context; [] for COPY --from=<stage>."""
    words = instruction_words(instruction.arguments)
    flags = [word for word in words if word.startswith("--")]
    if any(flag.startswith("--from=") for flag in flags):
        return []
    paths = [word for word in words if not word.startswith("--")]
    return paths[:-1]


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored_by_dockerignore(source: str, patterns: list[str]) -> bool:
    """Whether a path, or a folder above it, matches a .dockerignore pattern.

    Covers the pattern forms this repository uses (names, globs, `**/`); negations (`!`)
    are not supported and make the check fail loudly.
    """
    parts = Path(source).parts
    candidates = ["/".join(parts[: index + 1]) for index in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("!"):
            raise ValueError(f".dockerignore negation {pattern!r} is not supported by this check")
        for candidate in candidates:
            if fnmatch.fnmatch(candidate, pattern):
                return True
            # "**/name" matches at any depth; other patterns match from the context root.
            if pattern.startswith("**/") and fnmatch.fnmatch(Path(candidate).name, pattern[3:]):
                return True
    return False
