#!/bin/sh
# A preflight that passes only when another runs at the same time: it creates $1, then
# waits for $2 (the other's $1). Run one after the other, the first waits until it is
# killed at its preflight_timeout.
: > "$1"
while [ ! -e "$2" ]; do sleep 0.02; done
echo "met $2"
