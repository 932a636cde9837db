# A throwaway PostgreSQL for the benchmarks, sourced by them (not run).
#
#   pg_start DIR PORT   # initdb in DIR/data, serve 127.0.0.1:PORT; sets PG_BIN, PG_PID
#   pg_url DATABASE     # creates DATABASE, prints its URL
#   pg_stop             # stops the server by its PID
#
# Debian's PostgreSQL (initdb and postgres under /usr/lib/postgresql/VERSION/bin).
# The server has its own data folder, listens on 127.0.0.1 only and keeps the
# durable settings (fsync on, as the SQLite state's synchronous = FULL). initdb
# and the server refuse root: as root they run as the `postgres` user.

PG_PID=
pg_start() {
    local dir=$1
    PG_PORT=$2
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -x "$PG_BIN/initdb" ] || { echo "needs PostgreSQL: apt-get install -y postgresql" >&2; exit 2; }
    PG_AS=()
    [ "$(id -u)" = 0 ] && PG_AS=(setpriv --reuid=postgres --regid=postgres --init-groups --)
    mkdir -p "$dir"
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
    # setpriv execs the server: $! is its PID.
    "${PG_AS[@]}" "$PG_BIN/postgres" -D "$dir/data" -p "$PG_PORT" -k "$dir" \
        -c listen_addresses=127.0.0.1 -c max_connections=100 > "$dir/server.log" 2>&1 &
    PG_PID=$!
    # Ready on its own socket, so another server on the port is never taken for it.
    until "$PG_BIN/pg_isready" -q -h "$dir" -p "$PG_PORT"; do
        kill -0 "$PG_PID" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
        sleep 0.05
    done
}

pg_url() {
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE $1"
    echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

pg_stop() {
    if [ -n "$PG_PID" ]; then
        kill -INT "$PG_PID" 2>/dev/null
        wait "$PG_PID" 2>/dev/null || true
        PG_PID=
    fi
}
