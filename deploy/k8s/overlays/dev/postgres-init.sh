#!/bin/sh
# Run once by the postgres image's entrypoint, when it initialises the database, as its superuser
# (the role the migrations run as here). The origin serves as a login granted agentplane_app; that
# role is the migrations' own (same definition, made only if missing), made here first so that
# the login can be granted it before they run.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set svc_password="$AGENTPLANE_SVC_PASSWORD" <<'SQL'
CREATE ROLE agentplane_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
CREATE ROLE agentplane_svc LOGIN PASSWORD :'svc_password' IN ROLE agentplane_app;
SQL
