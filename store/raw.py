"""Hot-path statements on the DBAPI connection, bypassing SQLAlchemy's execution layer.

SQLAlchemy Core costs ~60 µs per statement and per transaction here, raw sqlite3 ~6 µs. The SQL is
still SQLAlchemy's, compiled once per dialect, and values go through the columns' own bind
processors, so rows are stored exactly as the ORM stores them (tests/store compares the two).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sqlalchemy import Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler


class RawStatement:
    def __init__(self, statement: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None) -> None:
        keys = list(column_keys) if column_keys else None
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=keys))
        self.sql = compiled.string
        self._names = list(compiled.binds)
        self._order = list(compiled.positiontup or []) if compiled.positional else None
        self._processors: dict[str, Callable[[Any], Any]] = {}
        for name, bind in compiled.binds.items():
            processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._processors[name] = processor

    def parameters(self, values: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        converted = {}
        for name in self._names:
            value = values[name]
            processor = self._processors.get(name)
            converted[name] = processor(value) if processor is not None else value
        if self._order is not None:
            return [converted[name] for name in self._order]
        return converted

    def execute(self, cursor: Any, values: Mapping[str, Any]) -> Any:
        cursor.execute(self.sql, self.parameters(values))
        return cursor
