import shutil
import tempfile

pytest_plugins = ["tests.services"]

_private_basetemp: str | None = None


def pytest_configure(config) -> None:  # type: ignore[no-untyped-def]
    # pytest keeps only the newest few /tmp/pytest-of-<user>/pytest-N folders and deletes
    # older ones when a session starts, so another session of the same user could remove
    # the data folders of the servers this session runs. A private base folder avoids it.
    global _private_basetemp
    if config.option.basetemp is None:
        _private_basetemp = tempfile.mkdtemp(prefix="pytest-ablate-")
        config.option.basetemp = _private_basetemp


def pytest_unconfigure(config) -> None:  # type: ignore[no-untyped-def]
    if _private_basetemp is not None:
        shutil.rmtree(_private_basetemp, ignore_errors=True)
