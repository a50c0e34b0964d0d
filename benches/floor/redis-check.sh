#!/bin/bash
# The baseline of issue 17's CPU bar: a Redis role check for HAProxy written
# in bash around redis-cli, the way the common xinetd and probe scripts do it
# (`redis-cli ping` answered PONG, then `redis-cli info replication` with
# role:master for the primary's route), answering with hand-written HTTP
# headers. The same facts the `redis --role primary` check reads: the
# server answers (a server still loading its dataset answers PING with
# `LOADING ...`, not PONG), and its role; the number of replicas for the
# body.
#
# Kept lean rather than faithful to the worst copies: it reads the request
# head first (no reset), takes the password from a file into REDISCLI_AUTH
# (never on redis-cli's command line, where ps shows it), parses with bash
# alone (no grep, cut or tr processes) and writes an exact Content-Length.
# Two redis-cli runs are the least a script asking these two things makes.
#
# $1: the server's host, $2: its port, $3: a file holding the password
# (mode 0600).

# The request line and headers, up to the blank line (bounded in time).
while IFS= read -r -t 2 line; do
    [ "$line" = $'\r' ] || [ -z "$line" ] && break
done

read -r REDISCLI_AUTH < "$3"
export REDISCLI_AUTH
cli=(/usr/bin/redis-cli -h "$1" -p "$2")

pong=$("${cli[@]}" ping 2>/dev/null)
if [ "$pong" != PONG ]; then
    status="503 Service Unavailable"; body="unhealthy: ${pong:-cannot connect}"
else
    info=$("${cli[@]}" info replication 2>/dev/null)
    role=${info#*role:}; role=${role%%$'\r'*}
    replicas=${info#*connected_slaves:}; replicas=${replicas%%$'\r'*}
    if [ -z "$info" ]; then
        status="503 Service Unavailable"; body="unhealthy: INFO replication failed"
    elif [ "$role" != master ]; then
        status="503 Service Unavailable"; body="unhealthy: not a primary (role:$role)"
    else
        status="200 OK"; body="healthy: primary, $replicas replicas"
    fi
fi
body="$body"$'\n'
printf 'HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$status" "${#body}" "$body"
