#!/bin/bash
# The baseline of issue 4's speed bar: a *correct* shell + mysql client check
# of the same state `inetd-health galera` reads, as a careful operator would
# write it instead of clustercheck: it reads the request head before
# answering (so no reset, no `sleep 0.1`), takes the credentials from an
# option file ($2, never argv), runs one query under a connect timeout, and
# writes an exact Content-Length.
#
# $1: the server's socket, $2: the option file.

# The request line and headers, up to the blank line (bounded in time).
while IFS= read -r -t 2 line; do
    [ "$line" = $'\r' ] || [ -z "$line" ] && break
done

row=$(mysql --defaults-extra-file="$2" --socket="$1" --connect-timeout=2 -N -B -e "
SELECT @@global.wsrep_on, @@global.read_only, @@global.wsrep_reject_queries,
  (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_LOCAL_STATE'),
  (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_CLUSTER_STATUS'),
  (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'WSREP_READY')" 2>/dev/null)
IFS=$'\t' read -r on read_only reject state cluster ready <<< "$row"

if [ -z "$row" ]; then
    status="503 Service Unavailable"; body="unhealthy: cannot query the server"
elif [ "$on" != 1 ]; then
    status="503 Service Unavailable"; body="unhealthy: wsrep not enabled"
elif [ "$cluster" != Primary ]; then
    status="503 Service Unavailable"; body="unhealthy: non-primary"
elif [ "$ready" != ON ]; then
    status="503 Service Unavailable"; body="unhealthy: not ready"
elif [ "$state" != 4 ]; then
    status="503 Service Unavailable"; body="unhealthy: not synced (state $state)"
elif [ "$reject" != NONE ]; then
    status="503 Service Unavailable"; body="unhealthy: rejecting queries"
else
    status="200 OK"; body="healthy: synced"
fi
body="$body"$'\n'
printf 'HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
    "$status" "${#body}" "$body"
