# Airflow 3.3 with inboxsync installed (editable: docker-compose.yaml mounts include/ over it).
FROM apache/airflow:3.3.2-python3.11

WORKDIR /opt/inboxsync
COPY --chown=airflow:0 pyproject.toml README.md ./
COPY --chown=airflow:0 include ./include
RUN pip install --no-cache-dir -e .
WORKDIR /opt/airflow
