"""Helpers for storing StrEnums as their lowercase values."""

from enum import StrEnum

from sqlalchemy import Enum


def enum_column(enum_type: type[StrEnum]) -> Enum:
    """Build a VARCHAR column type that stores the enum's values and rejects any other string."""
    return Enum(
        enum_type,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
        name=f"{enum_type.__name__.lower()}",
    )
