#!/usr/bin/env bash
# Start the local PostgreSQL cluster and make the test role and database (idempotent).
set -euo pipefail
version=$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)
[ -n "$version" ] || { echo "PostgreSQL is not installed" >&2; exit 1; }
pg_ctlcluster "$version" main start 2>/dev/null || pg_ctlcluster "$version" main status >/dev/null
for _ in $(seq 1 30); do
  su postgres -c "pg_isready -q -h 127.0.0.1" && break
  sleep 1
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='tributary'\"" | grep -q 1 ||
  su postgres -c "psql -qc \"CREATE ROLE tributary LOGIN SUPERUSER PASSWORD 'tributary'\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='tributary_test'\"" | grep -q 1 ||
  su postgres -c "createdb -O tributary tributary_test"
echo "PostgreSQL $version ready"
