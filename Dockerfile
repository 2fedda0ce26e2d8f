# Airflow 3.3 with inboxsync installed (editable: docker-compose.yaml mounts include/ over it;
# the parse's C fast path is built where the image has a compiler, else the parse runs in Python).
FROM apache/airflow:3.3.2-python3.11

WORKDIR /opt/inboxsync
COPY --chown=airflow:0 pyproject.toml setup.py README.md ./
COPY --chown=airflow:0 include ./include
RUN pip install --no-cache-dir -e .
WORKDIR /opt/airflow
