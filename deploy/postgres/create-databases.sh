#!/bin/bash
# Runs once, when the postgres volume is first initialised (docker-entrypoint-initdb.d): creates the
# databases named in STOCK_ASSETS_EXTRA_DATABASES (space or comma separated), owned by POSTGRES_USER.
# Dagster's own database is POSTGRES_DB; MLflow's backend store is "mlflow".
set -euo pipefail
for db in ${STOCK_ASSETS_EXTRA_DATABASES//,/ }; do
  echo "creating database ${db}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -c "CREATE DATABASE \"${db}\" OWNER \"${POSTGRES_USER}\""
done
