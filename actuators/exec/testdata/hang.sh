#!/bin/sh
# Starts a child that would outlive it, records the child's pid in $1, and hangs.
sleep 300 &
echo $! > "$1"
echo "started child"
wait
