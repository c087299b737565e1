# The stock_assets image: one image for the user-code gRPC server, the Dagster webserver and daemon,
# the MLflow tracking server and the serving API (docker-compose.yml picks the command).
#   docker build -t stock-assets:latest .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    STOCK_ASSETS_HOME=/data/stock_assets \
    STOCK_ASSETS_ENV=production \
    HF_HUB_OFFLINE=1

# The CPU build of PyTorch first: a plain `torch` requirement would pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/stock_assets
# Dependencies change less often than code: install them from the project metadata first.
COPY pyproject.toml setup.py README.md ./
RUN mkdir -p stock_assets serving \
    && touch stock_assets/__init__.py serving/__init__.py \
    && pip install -e . \
    && rm -rf stock_assets serving stock_assets.egg-info

COPY stock_assets ./stock_assets
COPY serving ./serving
COPY feature_repo ./feature_repo
COPY watchlist.yaml ./
RUN pip install --no-deps -e .

# The production instance, workspace and Celery worker config; values come from the environment at
# run time.
COPY deploy/dagster.yaml deploy/workspace.yaml deploy/celery.yaml ${DAGSTER_HOME}/

RUN useradd --create-home --uid 10001 stock \
    && mkdir -p "${STOCK_ASSETS_HOME}" "${DAGSTER_HOME}/storage" /mlflow/artifacts \
    && chown -R stock:stock "${STOCK_ASSETS_HOME}" "${DAGSTER_HOME}" /mlflow
USER stock

EXPOSE 3000 4000 5000 8000
# The user-code server by default; compose overrides the command for the other services.
CMD ["dagster", "api", "grpc", "-m", "stock_assets.definitions", "-a", "defs", \
     "-h", "0.0.0.0", "-p", "4000", "--location-name", "stock_assets"]
