#!/bin/bash
# Entrypoint of the PostgreSQL stand-in image, our own implementation of the official postgres
# image's documented environment contract (see the Dockerfile beside it):
#   - `docker-entrypoint.sh postgres [-c name=value ...]` (the default CMD; arguments starting
#     with "-" get `postgres` put in front): on the first start, initialise PGDATA, set the
#     superuser, create POSTGRES_DB and run /docker-entrypoint-initdb.d once; then exec the server
#     in the foreground;
#   - any other command is exec'd as given (psql, pg_isready, sh ...).
# Started as root, it prepares PGDATA and the socket folder and re-runs itself as postgres (999).
set -Eeuo pipefail

log() { echo "entrypoint: $*" >&2; }
die() { log "error: $*"; exit 1; }

# VAR or VAR_FILE (the file's content, as Docker/Kubernetes secrets mount it), never both.
from_env_or_file() {
  local name="$1" default="${2:-}" file_name="${1}_FILE"
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then
    die "both $name and $file_name are set; use one"
  fi
  local value="$default"
  if [ -n "${!name:-}" ]; then
    value="${!name}"
  elif [ -n "${!file_name:-}" ]; then
    value="$(< "${!file_name}")"
  fi
  export "$name"="$value"
  unset "$file_name"
}

if [ "${1:0:1}" = "-" ]; then
  set -- postgres "$@"
fi
if [ "${1:-}" != "postgres" ]; then
  exec "$@"
fi

export PGDATA="${PGDATA:-/var/lib/postgresql/data}"

# As root: own PGDATA (it may be a fresh volume) and the socket folder, then drop to postgres.
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 0700 "$PGDATA"
  chmod 3777 /var/run/postgresql
  if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chown postgres:postgres "$POSTGRES_INITDB_WALDIR"
    chmod 0700 "$POSTGRES_INITDB_WALDIR"
  fi
  exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
fi

getent passwd "$(id -u)" >/dev/null \
  || die "UID $(id -u) has no passwd entry; run as 999 (postgres) or as root"

from_env_or_file POSTGRES_USER postgres
from_env_or_file POSTGRES_PASSWORD
from_env_or_file POSTGRES_DB "$POSTGRES_USER"
export POSTGRES_HOST_AUTH_METHOD="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}"

# initdb wants an empty folder it owns with mode 0700 (or 0750); with a volume mounted above it
# (fsGroup), the folder may not exist yet.
mkdir -p "$PGDATA"
chmod 0700 "$PGDATA" 2>/dev/null || true

# psql for the set-up steps: over the Unix socket of the temporary server, as the superuser.
setup_psql() {
  psql -X -v ON_ERROR_STOP=1 --no-password --username "$POSTGRES_USER" "$@"
}

run_init_scripts() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] || continue
    case "$f" in
      *.sh)
        if [ -x "$f" ]; then
          log "running $f"; "$f"
        else
          log "sourcing $f"
          # shellcheck disable=SC1090
          . "$f"
        fi
        ;;
      *.sql) log "running $f"; setup_psql --dbname "$POSTGRES_DB" -f "$f" ;;
      *.sql.gz) log "running $f"; gzip -dc "$f" | setup_psql --dbname "$POSTGRES_DB" ;;
      *.sql.xz) log "running $f"; xz -dc "$f" | setup_psql --dbname "$POSTGRES_DB" ;;
      *) log "ignoring $f" ;;
    esac
  done
}

first_initialisation() {
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
    die "the database is not initialised and POSTGRES_PASSWORD is empty: set POSTGRES_PASSWORD
  (or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection
  without a password (never do that outside a test)"
  fi
  if [ -n "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
    log "warning: POSTGRES_HOST_AUTH_METHOD=trust: the password is set but never checked"
  fi

  local -a initdb_args=(--username="$POSTGRES_USER" --auth-local=trust
    --auth-host="$POSTGRES_HOST_AUTH_METHOD")
  [ -n "${POSTGRES_INITDB_WALDIR:-}" ] && initdb_args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  local -a extra_args=()
  read -r -a extra_args <<<"${POSTGRES_INITDB_ARGS:-}"
  log "initialising $PGDATA (superuser $POSTGRES_USER, host auth $POSTGRES_HOST_AUTH_METHOD)"
  if [ -n "$POSTGRES_PASSWORD" ]; then
    initdb "${initdb_args[@]}" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") "${extra_args[@]}"
  else
    initdb "${initdb_args[@]}" "${extra_args[@]}"
  fi
  # Every client address, beyond initdb's loopback lines.
  printf '\nhost all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_HOST_AUTH_METHOD" = md5 ]; then
    printf "password_encryption = 'md5'\n" >> "$PGDATA/postgresql.conf"
  fi

  # A temporary server on the Unix socket only, so that no client can connect before the
  # set-up is done.
  log "starting a temporary server for the set-up"
  pg_ctl -D "$PGDATA" -w -o "-c listen_addresses='' -p ${PGPORT:-5432}" start
  if [ "$POSTGRES_DB" != postgres ]; then
    local exists
    exists="$(setup_psql --dbname postgres -Atq --set db="$POSTGRES_DB" \
      <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")"
    if [ -z "$exists" ]; then
      log "creating database $POSTGRES_DB"
      setup_psql --dbname postgres -q --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
  fi
  PGUSER="$POSTGRES_USER" PGDATABASE="$POSTGRES_DB" run_init_scripts
  pg_ctl -D "$PGDATA" -w -m fast stop
  log "initialisation done"
}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  first_initialisation
fi
exec "$@"
