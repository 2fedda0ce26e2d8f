"""Search every column of every table of a database for a string (secrets and erasure tests)."""

from __future__ import annotations

import psycopg2
from psycopg2 import sql


def find_text(
    url: str, needle: str, *, schemas: tuple[str, ...], ignore_case: bool = False
) -> dict[str, int]:
    """Rows per ``schema.table.column`` whose value contains ``needle``.

    Every column of every base table in ``schemas`` is searched: ``bytea`` columns as Latin-1
    text (so raw header bytes are searched byte for byte), every other type through its text
    form (arrays, json/jsonb, numbers alike).

    Args:
        url: libpq URL of the database.
        needle: The string to look for.
        schemas: Schemas to search.
        ignore_case: Compare lower-cased.

    Returns:
        The columns with at least one hit and their row counts (empty: found nowhere).
    """
    hits: dict[str, int] = {}
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT c.table_schema, c.table_name, c.column_name, c.data_type"
            " FROM information_schema.columns c JOIN information_schema.tables t"
            "   ON (t.table_schema, t.table_name) = (c.table_schema, c.table_name)"
            " WHERE t.table_type = 'BASE TABLE' AND c.table_schema = ANY(%s)"
            " ORDER BY 1, 2, c.ordinal_position",
            (list(schemas),),
        )
        for schema, table, column, data_type in cur.fetchall():
            col = sql.Identifier(column)
            text = (
                sql.SQL("convert_from({}, 'LATIN1')").format(col)
                if data_type == "bytea"
                else sql.SQL("{}::text").format(col)
            )
            if ignore_case:
                text = sql.SQL("lower({})").format(text)
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}.{} WHERE strpos({}, %s) > 0").format(
                    sql.Identifier(schema), sql.Identifier(table), text
                ),
                (needle.lower() if ignore_case else needle,),
            )
            count = cur.fetchone()[0]
            if count:
                hits[f"{schema}.{table}.{column}"] = count
    conn.close()
    return hits


def row_count(url: str, *, schemas: tuple[str, ...]) -> int:
    """Rows in all base tables of ``schemas`` together (to show a search had data to search)."""
    total = 0
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema = ANY(%s)",
            (list(schemas),),
        )
        for schema, table in cur.fetchall():
            cur.execute(
                sql.SQL("SELECT count(*) FROM {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
            )
            total += cur.fetchone()[0]
    conn.close()
    return total
