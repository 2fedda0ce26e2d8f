#!/bin/bash
# One-shot set-up of the compose stack (service airflow-init): Airflow's metadata database, the
# per-provider pools, the admin's password file, the warehouse schema. Safe to run again.
set -euo pipefail

mkdir -p /opt/airflow/logs /opt/airflow/config
python - <<'PY'
import json, os
from inboxsync.local_airflow import pool_definitions

with open("/opt/airflow/config/passwords.json", "w") as f:
    json.dump({"admin": os.environ["INBOXSYNC_AIRFLOW_PASSWORD"]}, f)
with open("/opt/airflow/config/inboxsync-pools.json", "w") as f:
    json.dump(pool_definitions(), f, indent=2)
PY
chown -R "${AIRFLOW_UID:-50000}:0" /opt/airflow/logs /opt/airflow/config
chmod 600 /opt/airflow/config/passwords.json

airflow db migrate
airflow pools import /opt/airflow/config/inboxsync-pools.json
inboxsync migrate
echo "airflow-init: done"
