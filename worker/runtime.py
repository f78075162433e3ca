"""Per-process handles: settings, the database engine and the object store."""

from functools import lru_cache

from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker as SessionMaker

from api.db import make_engine, make_sessionmaker
from api.settings import Settings, get_settings
from api.storage import ObjectStore


def settings() -> Settings:
    return get_settings()


@lru_cache
def engine() -> Engine:
    return make_engine(settings())


@lru_cache
def sessionmaker() -> SessionMaker:
    return make_sessionmaker(engine())


@lru_cache
def store() -> ObjectStore:
    return ObjectStore(settings())


def reset() -> None:
    """Drop handles inherited from a parent process."""
    if engine.cache_info().currsize:
        engine().dispose(close=False)
    engine.cache_clear()
    sessionmaker.cache_clear()
    store.cache_clear()
