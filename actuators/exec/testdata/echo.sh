#!/bin/sh
# Prints its arguments one per line, a few CANARYD_* variables and the event on stdin.
for a in "$@"; do echo "arg=$a"; done
echo "key=$CANARYD_IDEMPOTENCY_KEY"
echo "service=$CANARYD_SERVICE"
echo "ns=$KUBE_NS"
echo "stdin=$(cat)"
