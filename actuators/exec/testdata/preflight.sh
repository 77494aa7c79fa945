#!/bin/sh
# A preflight: prints what it was given (argv, CANARYD_ACTION, an env value) and exits
# with $PREFLIGHT_EXIT (0 by default), as `kubectl auth can-i` answers yes or no.
for a in "$@"; do echo "arg=$a"; done
echo "action=$CANARYD_ACTION"
echo "key=$CANARYD_IDEMPOTENCY_KEY"
echo "ns=$KUBE_NS"
echo "inherited=${CANARYD_TEST_INHERITED:-unset}"
exit "${PREFLIGHT_EXIT:-0}"
