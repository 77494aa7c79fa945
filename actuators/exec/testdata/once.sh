#!/bin/sh
# A rollback that takes a while and says when it is done: it counts its runs in $RUNS,
# sleeps $SLEEP seconds, then creates canaryd's completion marker.
echo run >> "$RUNS"
sleep "${SLEEP:-0}"
[ -n "$CANARYD_DONE_FILE" ] && : > "$CANARYD_DONE_FILE"
exit 0
