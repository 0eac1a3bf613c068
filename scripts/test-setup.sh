#!/usr/bin/env bash
# Installs and starts what the test suite needs beyond npm, then checks every requirement.
# `npm run test:all` runs it before `npm test`; `.ci/run` runs it too. Idempotent: it installs
# only packages that are missing and starts PostgreSQL only when it is not running, so on a
# machine that has everything it changes nothing. Needs root or sudo only when there is work.
#
# What the tests use, from Debian:
#   python3-argon2 python3-cryptography  OpenAlgo's own API-key hashing and Fernet (compatibility)
#   python3-zmq python3-websocket        an OpenAlgo-style bus publisher and SDK client
#   redis-server nats-server             the Redis registry and NATS bus tests start their own
#   openssl                              a self-signed certificate for the TLS test
#   chromium                             the dashboard and browser-client tests
#   postgresql                           a server on 127.0.0.1:5432 where the `postgres` role
#                                        connects with trust authentication
set -euo pipefail

packages=(python3-argon2 python3-cryptography python3-zmq python3-websocket redis-server nats-server openssl chromium postgresql)
PG_HOST=127.0.0.1
PG_PORT=5432

say() { printf 'test-setup: %s\n' "$*"; }
die() { printf 'test-setup: %s\n' "$*" >&2; exit 1; }

# Root runs commands as is; anyone else through sudo (which may ask for a password).
as_root() {
  if ((EUID == 0)); then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (run this as root, or install sudo)"
  fi
}

as_postgres() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null; then sudo -u postgres "$@"
  else return 1
  fi
}

# ---- 1. Debian packages -------------------------------------------------------------------------

if command -v dpkg-query >/dev/null && command -v apt-get >/dev/null; then
  missing=()
  for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
else
  # Not Debian: nothing is installed here, but the checks below still say what is missing.
  say "no dpkg/apt here: install the equivalents of ${packages[*]} yourself"
fi

# ---- 2. PostgreSQL on 127.0.0.1:5432, postgres role with trust ----------------------------------

pg_can_connect() {
  # No password from anywhere: success means trust (a host line cannot use peer authentication).
  env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 \
    psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -w -Atqc 'select 1' >/dev/null 2>&1
}

if command -v pg_lsclusters >/dev/null; then
  # "15 main 5432 online postgres /var/lib/... /var/log/..."
  cluster=$(pg_lsclusters --no-header 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }')
  if [[ -z $cluster ]] && [[ -z $(pg_lsclusters --no-header 2>/dev/null) ]]; then
    # Installed without a cluster (createcluster.conf may say so): make the usual one.
    version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    [[ -n $version ]] || die "postgresql is installed but no server version is under /usr/lib/postgresql"
    say "creating PostgreSQL cluster $version/main on port $PG_PORT"
    as_root pg_createcluster "$version" main --port "$PG_PORT" >/dev/null
    cluster="$version main down"
  fi
  if [[ -n $cluster ]]; then
    read -r pg_version pg_cluster pg_status <<<"$cluster"
    if [[ $pg_status != online* ]]; then
      say "starting PostgreSQL cluster $pg_version/$pg_cluster"
      as_root pg_ctlcluster "$pg_version" "$pg_cluster" start
    fi
    if ! pg_can_connect; then
      # The tests connect as postgres from 127.0.0.1 without a password. pg_hba.conf is read top
      # down, so the line goes first; only that role, only from this host.
      hba=$(as_postgres psql -p "$PG_PORT" -Atqc 'show hba_file' 2>/dev/null || true)
      [[ -n $hba ]] || hba="/etc/postgresql/$pg_version/$pg_cluster/pg_hba.conf"
      line="host all postgres $PG_HOST/32 trust"
      if ! as_root grep -qxF "$line" "$hba"; then
        say "allowing the postgres role from $PG_HOST without a password: adding '$line' to the top of $hba"
        as_root sed -i "1i $line" "$hba"
      fi
      as_root pg_ctlcluster "$pg_version" "$pg_cluster" reload
      for _ in 1 2 3 4 5 6 7 8 9 10; do pg_can_connect && break; sleep 0.5; done
    fi
  fi
fi

# ---- 3. Check everything, naming whatever is missing -------------------------------------------

problems=()
node_version=$(node -p 'process.versions.node' 2>/dev/null || true)
if [[ -z $node_version ]]; then
  problems+=("node is not on PATH (Node.js 20.12 or later)")
elif [[ $(printf '%s\n' 20.12.0 "$node_version" | sort -V | head -n 1) != 20.12.0 ]]; then
  problems+=("Node.js $node_version is too old (20.12 or later)")
fi
if [[ -x /usr/bin/python3 ]]; then
  for module in argon2:python3-argon2 cryptography:python3-cryptography zmq:python3-zmq websocket:python3-websocket; do
    /usr/bin/python3 -c "import ${module%%:*}" 2>/dev/null || problems+=("/usr/bin/python3 cannot import ${module%%:*} (Debian package ${module#*:})")
  done
else
  problems+=("/usr/bin/python3 is missing (Debian package python3, with python3-argon2 python3-cryptography python3-zmq python3-websocket)")
fi
[[ -x /usr/bin/redis-server ]] || problems+=("/usr/bin/redis-server is missing (Debian package redis-server)")
[[ -x /usr/sbin/nats-server || -x /usr/bin/nats-server ]] || problems+=("nats-server is missing from /usr/sbin and /usr/bin (Debian package nats-server)")
command -v openssl >/dev/null || problems+=("openssl is not on PATH (Debian package openssl)")
chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
[[ -x $chromium ]] || problems+=("$chromium is missing (Debian package chromium, or set CHROMIUM_PATH)")
if ! command -v psql >/dev/null; then
  problems+=("psql is missing (Debian package postgresql)")
elif ! pg_can_connect; then
  problems+=("PostgreSQL does not accept the postgres role from $PG_HOST:$PG_PORT without a password (Debian package postgresql; a running cluster on port $PG_PORT; a 'host all postgres $PG_HOST/32 trust' line first in its pg_hba.conf)")
fi

if ((${#problems[@]})); then
  printf 'test-setup: the tests cannot all run; missing:\n' >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi
say "everything the tests need is here"
