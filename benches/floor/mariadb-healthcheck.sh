#!/bin/bash
# The seed's MariaDB health check (../shared/SEED-NOTES.md), as users copy it
# into an xinetd service: `mysqladmin ping`, then a hand-written HTTP
# response. Like the seed it never reads the request, so the connection ends
# in a reset when the client's request is still unread at exit.
#
# The only change: the seed pings the default server as the default user; here
# the socket ($1) and the monitor's option file ($2, mode 0600) are passed to
# mysqladmin so it really pings the bench's server with the same credentials
# as `inetd-health mariadb --defaults-extra-file`.

mysqladmin --defaults-extra-file="$2" --socket="$1" ping > /dev/null 2>&1

if [ $? -eq 0 ]
then
    # MariaDB is alive
    echo -en "HTTP/1.1 200 OK\r\n"
    echo -en "Content-Type: text/plain\r\n"
    echo -en "Content-Length: 17\r\n"
    echo -en "\r\n"
    echo -en "MariaDB is alive\n"
else
    # MariaDB is dead
    echo -en "HTTP/1.1 503 Service Unavailable\r\n"
    echo -en "Content-Type: text/plain\r\n"
    echo -en "Content-Length: 16\r\n"
    echo -en "\r\n"
    echo -en "MariaDB is dead\n"
fi
