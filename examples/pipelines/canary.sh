#!/bin/sh
# The canary step of a deploy pipeline, in plain POSIX sh: register this deploy's canary
# with canaryd, wait for its verdict, and exit with it (0 pass, 1 fail, 2 marginal,
# 3 error or aborted, 4 the step itself failed: never read 4 as a pass).
#
#   CANARYD_URL=https://canaryd.internal.example VERSION=$(git rev-parse HEAD) ./canary.sh
#
# CANARYD_URL   canaryd's base URL (required); CANARYD_TOKEN a register-role token if the
#               server has auth
# VERSION       what this deploy ships: a commit or a release tag (required)
# APP           the service (default checkout); ANALYSIS the config's analysis (default
#               golden-signals)
#
# The key names the deploy (service and version), not the attempt: when the step is run
# again — a retried job, a re-run pipeline, a runner lost mid-wait — canaryd answers with
# the canary it already has instead of registering a second one, and `wait` reads its
# verdict, at once if it has ended. To judge the same version again on purpose, change
# the key (add a run number).
set -eu
: "${CANARYD_URL:?set CANARYD_URL to canaryd's base URL}"
: "${VERSION:?set VERSION to the commit or tag being deployed}"
APP=${APP:-checkout}
ANALYSIS=${ANALYSIS:-golden-signals}
export CANARYD_URL

ID=$(canaryd canary create --analysis "$ANALYSIS" --name "$APP $VERSION" \
      --key "$APP@$VERSION" \
      --baseline track=stable --canary track=canary --var app="$APP")
echo "canary $ID: $CANARYD_URL/canaries/$ID" >&2
exec canaryd canary wait "$ID"
