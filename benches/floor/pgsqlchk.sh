#!/bin/bash
# The classic xinetd check for PostgreSQL behind HAProxy, "pgsqlchk", as
# Percona's blog (2019, "PostgreSQL Application Connection Failover Using
# HAProxy with xinetd") and many copies of it ship it: bash runs
# `psql -t -c "select pg_is_in_recovery()"`, and answers with hand-made HTTP
# headers written by /bin/echo (the program, as the original calls it, not
# bash's builtin): 200 for a primary, 206 for a standby, 503 otherwise. Like
# the original it never reads the request, so the connection may end in a
# reset when the client's request is still unread at exit.
#
# The changes: the server's socket directory ($1) and port ($2) instead of
# localhost:5432, the role `monitor` and database `postgres`, the password
# from a .pgpass file ($3, mode 0600: PGPASSFILE) instead of PGPASSWORD in
# the script, `-A` so the value has no padding, psql by its full path
# (Debian's, as the original names $PGBIN/psql: /usr/bin/psql on Debian is a
# Perl wrapper that adds its own start-up), and headers that end where HTTP
# says (the original's `echo -e "...\r\n"` adds a second newline, so its
# head ends after the status line). The same role and password
# file as `inetd-health postgres --user monitor --passfile F`. A fourth
# argument names another psql (the bench passes /usr/bin/psql, Debian's
# wrapper, which a copy of the script calling plain `psql` finds on PATH).

PGBIN=/usr/lib/postgresql/15/bin
PSQL="${4:-$PGBIN/psql}"
PGSQL_HOST="$1"
PGSQL_PORT="$2"
PGSQL_DATABASE="postgres"
PGSQL_USERNAME="monitor"
export PGPASSFILE="$3"

# We perform a simple query that should return a few results
VALUE=$("$PSQL" -h "$PGSQL_HOST" -p "$PGSQL_PORT" -U "$PGSQL_USERNAME" -d "$PGSQL_DATABASE" -tAc "select pg_is_in_recovery()" 2> /dev/null)

if [ "$VALUE" == "t" ]
then
    /bin/echo -e "HTTP/1.1 206 OK\r"
    /bin/echo -e "Content-Type: text/plain\r"
    /bin/echo -e "Content-Length: 8\r"
    /bin/echo -e "\r"
    /bin/echo "Standby"
elif [ "$VALUE" == "f" ]
then
    /bin/echo -e "HTTP/1.1 200 OK\r"
    /bin/echo -e "Content-Type: text/plain\r"
    /bin/echo -e "Content-Length: 8\r"
    /bin/echo -e "\r"
    /bin/echo "Primary"
else
    /bin/echo -e "HTTP/1.1 503 Service Unavailable\r"
    /bin/echo -e "Content-Type: text/plain\r"
    /bin/echo -e "Content-Length: 8\r"
    /bin/echo -e "\r"
    /bin/echo "DB Down"
fi
