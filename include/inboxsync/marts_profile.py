"""The dbt profile mapping of the warehouse connection (imports cosmos: load it lazily).

cosmos's ``PostgresUserPasswordProfileMapping`` turns the ``inboxsync_warehouse`` Airflow
connection into a dbt profile, the password passed to dbt in an environment variable, never
written to ``profiles.yml``. This subclass also accepts a connection without a password (trust,
peer or client-certificate authentication, as on the local services of the demo and the tests),
and maps the TLS extras the warehouse's other clients honour (``inboxsync.warehouse``).
"""

from __future__ import annotations

from typing import Any

from cosmos.profiles.postgres.user_pass import PostgresUserPasswordProfileMapping


class WarehouseProfileMapping(PostgresUserPasswordProfileMapping):
    """A Postgres connection, with or without a password, as a dbt profile."""

    required_fields = ["host", "user", "dbname"]  # noqa: RUF012 (cosmos declares it a list)
    airflow_param_mapping = {  # noqa: RUF012
        **PostgresUserPasswordProfileMapping.airflow_param_mapping,
        "sslrootcert": "extra.sslrootcert",
        "sslcert": "extra.sslcert",
        "sslkey": "extra.sslkey",
    }

    def get_dbt_value(self, name: str) -> Any:
        """The connection's value of a profile field; an empty password when it has none."""
        value = super().get_dbt_value(name)
        if name == "password" and value is None:
            return ""
        return value

    @property
    def mock_profile(self) -> dict[str, Any]:
        """The placeholder profile of ``dbt parse``, which needs a password key but no server."""
        return {**super().mock_profile, "password": "mock_value"}
