"""Building blocks every domain's API shapes share: typed text that is trimmed and checked, and partial
updates that cannot null a required field."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler, ValidationInfo
from pydantic import field_validator as _field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

_LINE_BREAKS = frozenset("\n\r\t")


@dataclass(frozen=True)
class CleanText:
    """``Annotated[str, CleanText(min_length=1, max_length=60)]``: surrounding whitespace trimmed (as
    ``str.strip`` does), control characters refused (line breaks too, unless ``multiline``), then the
    length checked in characters — with pydantic's usual error types, so messages read the same."""

    min_length: int = 0
    max_length: int = 200
    multiline: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.clean, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.update(minLength=self.min_length, maxLength=self.max_length)
        return json_schema

    def clean(self, value: str) -> str:
        value = value.strip()
        allowed = _LINE_BREAKS if self.multiline else frozenset()
        if any(unicodedata.category(c) == "Cc" and c not in allowed for c in value):
            raise PydanticCustomError(
                "control_characters",
                "Text may not contain control characters" + ("" if self.multiline else " or line breaks"),
            )
        if len(value) < self.min_length:
            raise PydanticCustomError(
                "string_too_short",
                "String should have at least {min_length} character" + ("s" if self.min_length > 1 else ""),
                {"min_length": self.min_length},
            )
        if len(value) > self.max_length:
            raise PydanticCustomError(
                "string_too_long",
                "String should have at most {max_length} characters",
                {"max_length": self.max_length},
            )
        return value


class NoNullUpdate(BaseModel):
    """A partial update: absent fields stay as they are; ``null`` is refused for fields that need a value
    (list the ones that may be cleared in ``nullable``). Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")
    nullable: ClassVar[frozenset[str]] = frozenset()

    @_field_validator("*", mode="after")
    @classmethod
    def _refuse_null(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for fields actually given: defaults are not validated.
        if value is None and info.field_name not in cls.nullable:
            raise ValueError("cannot be empty")
        return value

    def changes(self) -> dict[str, Any]:
        """The fields the client sent, with their (validated) values."""
        return self.model_dump(exclude_unset=True)
