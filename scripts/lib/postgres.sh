# Sourced by scripts/test (and usable by hand): a throw-away PostgreSQL server on a Unix
# socket in a temporary directory, run as the postgres user (initdb refuses root).
#   source scripts/lib/postgres.sh; start_test_postgres; ...; stop_test_postgres
# Sets WARDEN_TEST_PG (a libpq conninfo for the superuser) and pg_dir.

start_test_postgres() {
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  pg_dir="$(mktemp -d /tmp/warden-pg.XXXXXX)"
  chown postgres:postgres "$pg_dir"
  chmod 0700 "$pg_dir"
  pg_port=$(( 20000 + RANDOM % 20000 ))
  runuser -u postgres -- "$pg_bin/initdb" -D "$pg_dir/data" -A trust -U postgres \
    >"$pg_dir/initdb.log" 2>&1 || { cat "$pg_dir/initdb.log"; return 1; }
  # The postgres superuser is trusted on the socket; every other role must give its
  # password, so the credential tests (pgpass, password_command, wrong password) are real.
  printf 'local all postgres trust\nlocal all all scram-sha-256\n' >"$pg_dir/data/pg_hba.conf"
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
    -o "-c listen_addresses='' -c unix_socket_directories='$pg_dir' -p $pg_port -c max_connections=100 -c fsync=off" \
    start >/dev/null || { cat "$pg_dir/server.log"; return 1; }
  export WARDEN_TEST_PG="host=$pg_dir port=$pg_port user=postgres dbname=postgres"
  echo "PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}') on $pg_dir port $pg_port"
}

stop_test_postgres() {
  [ -n "${pg_dir:-}" ] || return 0
  runuser -u postgres -- "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
  pg_dir=""
}
