"""Schema pieces shared by every domain: text checks and the page envelope."""

import re
from typing import Annotated, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

ItemT = TypeVar("ItemT")

# PostgreSQL text cannot contain NUL, and other control characters have no place in
# these fields. Rejecting them here makes such input a 422 instead of a database error.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_clean_text(value: str) -> str:
    if CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    stripped = value.strip()
    if not stripped:
        raise ValueError("must not be blank")
    return stripped


def CleanText(max_length: int) -> type[str]:  # noqa: N802 - reads as a type in annotations
    return Annotated[str, Field(min_length=1, max_length=max_length), AfterValidator(check_clean_text)]  # type: ignore[return-value]


class Page(BaseModel, Generic[ItemT]):
    items: list[ItemT]
    total: int
    limit: int
    offset: int


class OrmModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)
