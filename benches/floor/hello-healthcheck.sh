#!/bin/bash
# The seed's "HTTP hello" service (../shared/SEED-NOTES.md), as users copy it
# into xinetd's `server =`: a status line, a hand-computed Content-Length
# (15, for a body of 16 bytes), a blank line and the body. Like the seed it
# never reads the request, so the connection ends in a reset.
echo -e "HTTP/1.1 200 OK\r"
echo -e "Content-Type: text/plain\r"
echo -e "Content-Length: 15\r"
echo -e "\r"
echo -e "Hello, World\r\n\r"
