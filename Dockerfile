# The worker image of the Kubernetes deployments in prefect.yaml: trainflow as the README
# installs it (the project into a venv with pip), no data and no state. Every run downloads
# what it needs or reads it from the store its environment names.
#
#   docker build -t registry.example.org/trainflow:0.1.0 .
#   docker push registry.example.org/trainflow:0.1.0
#
# Not built on the machine that tests trainflow: it runs no container engine (README, "From a
# laptop to a cluster", says what was run there and what was not).
FROM python:3.11-slim-bookworm

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The checkout the deployments' pull step enters: their entrypoints are files or modules in it.
WORKDIR /opt/trainflow
COPY pyproject.toml README.md ./
COPY lib lib
COPY tasks tasks
COPY flows flows
RUN python -m venv "$VIRTUAL_ENV" \
    && python -m pip install --no-cache-dir --upgrade pip \
    && python -m pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 trainflow

# A pod's TRAINFLOW_HOME is scratch (prefect.yaml sets it); nothing here runs as root.
USER trainflow
