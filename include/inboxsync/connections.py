"""Airflow connections, where every secret of inboxsync lives, and Airflow Variables.

Inside a task, Airflow's Task SDK resolves connections and Variables through the execution API.
Outside a task (the ``inboxsync`` CLI, tests, the demo) there is no supervisor to ask, so the SDK
only sees environment variables and external secrets backends; there we read the metadata
database the way the ``airflow connections`` command does. A task may write Variables but not
connections: the one secret kept in a Variable is an OAuth2 refresh token that a task saw rotate
(`inboxsync.oauth`).
"""

from __future__ import annotations

import json
from typing import Any

# Airflow is imported inside the functions: it reads its configuration once, at import, and the
# demo and the test harness set that configuration up only after importing this package.


def _in_task() -> bool:
    from airflow.sdk.execution_time import task_runner

    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def get_connection(conn_id: str) -> Any:
    """Return the Airflow connection ``conn_id`` from wherever Airflow keeps it.

    Raises:
        AirflowNotFoundException: No secrets backend and no metadata database knows it.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        if _in_task():
            raise
    from airflow.models.connection import Connection

    return Connection.get_connection_from_secrets(conn_id)


def save_connection(
    conn_id: str,
    *,
    conn_type: str,
    host: str,
    port: int,
    login: str,
    password: str | None,
    extra: dict[str, Any],
    description: str = "",
) -> None:
    """Create or replace a connection in Airflow's metadata database (CLI side only)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        if conn is None:
            conn = Connection(conn_id=conn_id)
            session.add(conn)
        conn.conn_type = conn_type
        conn.host = host
        conn.port = port
        conn.login = login
        if password is not None:
            conn.set_password(password)
        conn.set_extra(json.dumps(extra))
        conn.description = description


def delete_connection(conn_id: str) -> bool:
    """Delete a connection from Airflow's metadata database; False when it did not exist."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        return bool(session.query(Connection).filter(Connection.conn_id == conn_id).delete())


def update_connection_extra(conn_id: str, updates: dict[str, Any]) -> bool:
    """Merge ``updates`` into the extras of ``conn_id`` in Airflow's metadata database.

    Outside tasks only (a task process may not touch the database). Used to keep a refresh token
    that the token endpoint rotated.

    Returns:
        False when the metadata database holds no such connection (it comes from an environment
        variable or a secrets backend, which inboxsync does not write to).
    """
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        conn = session.query(Connection).filter(Connection.conn_id == conn_id).one_or_none()
        if conn is None:
            return False
        extra = json.loads(conn.extra) if conn.extra else {}
        extra.update(updates)
        conn.set_extra(json.dumps(extra))
        return True


def _variables() -> Any:
    """Airflow's Variable class for where this runs: the Task SDK's inside a task (through the
    execution API, which may write Variables but not connections), else the metadata database's."""
    if _in_task():
        from airflow.sdk import Variable

        return Variable
    from airflow.models.variable import Variable as StoredVariable

    return StoredVariable


def get_variable(key: str) -> str | None:
    """Return the Airflow Variable ``key`` (the secrets backends first outside a task); None when
    nothing has it."""
    if _in_task():
        return _variables().get(key, default=None)
    return _variables().get(key, default_var=None)


def set_variable(key: str, value: str, description: str) -> None:
    """Create or replace the Airflow Variable ``key`` in the metadata database."""
    _variables().set(key, value, description=description)


def delete_variable(key: str) -> None:
    """Delete the Airflow Variable ``key`` from the metadata database, if it is there."""
    _variables().delete(key)
