#!/bin/sh
# A slow rollback for the kill -9 test: it logs its start in $RUNS, works for $SLEEP
# seconds, prints, then (when $MARK is 1) creates canaryd's completion marker.
echo "$CANARYD_CANARY_ID" >> "$RUNS"
sleep "$SLEEP"
echo "rolled back $CANARYD_CANARY_ID"   # after canaryd died: must not kill the command
if [ "$MARK" = 1 ]; then : > "$CANARYD_DONE_FILE"; fi
exit 0
