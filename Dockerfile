# syntax=docker/dockerfile:1
# dnn-service: one image for the API (`dnn-service serve`), the workers (`dnn-service worker`)
# and the migrate step: the package with its [celery], [postgres] and [onnx] extras, every dependency
# at the version pinned in requirements.lock (the same pins ./scripts/test installs and tests).

# --- build: turn the project and its locked dependencies into wheels ------------------------
FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# The lock first: a change to the code alone does not rebuild the dependencies' wheels.
COPY requirements.lock ./
RUN pip wheel --wheel-dir /wheels -r requirements.lock && cp requirements.lock /wheels/
# Only what the package is built from: a change to tests or docs does not rebuild the wheels.
COPY pyproject.toml README.md ./
COPY core ./core
COPY app ./app
RUN pip wheel --no-deps --wheel-dir /wheels .

# --- runtime: the wheels installed, no compiler, no sources, not root ------------------------
FROM python:3.11-slim AS runtime
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels -r /wheels/requirements.lock \
    && pip install --no-index --no-deps --find-links /wheels dnn-service \
    && useradd --system --uid 10001 --home-dir /srv/dnn --create-home dnn
USER dnn
WORKDIR /srv/dnn
EXPOSE 8000
# The embedded default (SQLite, local workers) when run alone; docker-compose.yml overrides it.
# Every request needs an API key; create the first with
# `docker run ... dnn-service keys create --admin --tenant NAME` on the same database.
ENV DNN_DATABASE_URL=sqlite:////srv/dnn/dnn-service.db DNN_AUTH=keys
CMD ["dnn-service", "serve", "--host", "0.0.0.0", "--port", "8000"]
