#!/usr/bin/env bash
# Canary deployment: start NAME-canary beside NAME with the new image, check it for a while,
# and delete it again if it does not become (and stay) healthy.
#
#   ./canary.sh CLUSTER_ID WORKSPACE_NAME NEW_IMAGE [CANARY_PERCENT]
#
# Env:  MGN_API_URL, MGN_API_TOKEN (CI secrets); MONITOR_SECONDS (300) and CHECK_INTERVAL (30):
#       how long and how often the canary is checked; HTTP_CHECK_PATH (/) what is probed.
# Exit: 0 the canary stayed healthy; 1 it failed (and was deleted); 2 usage.
set -euo pipefail

CLUSTER_ID="${1:-}"
WORKSPACE_NAME="${2:-}"
NEW_IMAGE="${3:-}"
CANARY_PCT="${4:-10}"
MONITOR_SECONDS="${MONITOR_SECONDS:-300}"
CHECK_INTERVAL="${CHECK_INTERVAL:-30}"
HTTP_CHECK_PATH="${HTTP_CHECK_PATH:-/}"

if [ -z "$CLUSTER_ID" ] || [ -z "$WORKSPACE_NAME" ] || [ -z "$NEW_IMAGE" ]; then
    echo "usage: $0 CLUSTER_ID WORKSPACE_NAME NEW_IMAGE [CANARY_PERCENT]" >&2
    exit 2
fi

CANARY_NAME="${WORKSPACE_NAME}-canary"
echo "Canary deployment of $NEW_IMAGE on cluster $CLUSTER_ID as $CANARY_NAME (${CANARY_PCT}% of traffic)"

rollback() {
    echo "Rolling back: deleting $CANARY_NAME"
    mgn workspace delete "$CLUSTER_ID" "$CANARY_NAME" || true
}

if ! mgn workspace create "$CLUSTER_ID" --name "$CANARY_NAME" --image "$NEW_IMAGE"; then
    echo "error: could not create the canary workspace" >&2
    exit 1
fi

echo "Waiting for the canary to be ready..."
if ! mgn workspace wait "$CLUSTER_ID" "$CANARY_NAME" --timeout 5m; then
    echo "error: the canary did not become ready" >&2
    rollback
    exit 1
fi
echo "Canary is ready"

# Route CANARY_PCT% of the traffic to it in your load balancer here, then watch it.
elapsed=0
while :; do
    if ! mgn workspace get "$CLUSTER_ID" "$CANARY_NAME" -o json | grep -q '"status":"Running"'; then
        echo "  [${elapsed}/${MONITOR_SECONDS}s] canary is not Running" >&2
        rollback
        exit 1
    fi
    if ! mgn workspace test "$CLUSTER_ID" "$CANARY_NAME" --http-check "$HTTP_CHECK_PATH" --expected-status 200; then
        echo "  [${elapsed}/${MONITOR_SECONDS}s] canary failed its HTTP check" >&2
        rollback
        exit 1
    fi
    echo "  [${elapsed}/${MONITOR_SECONDS}s] canary healthy"
    if [ "$elapsed" -ge "$MONITOR_SECONDS" ]; then
        break
    fi
    sleep "$CHECK_INTERVAL"
    elapsed=$((elapsed + CHECK_INTERVAL))
done

echo "Canary stayed healthy for ${MONITOR_SECONDS}s."
echo "To promote it: shift the traffic to $CANARY_NAME, then: mgn workspace delete $CLUSTER_ID $WORKSPACE_NAME"
echo "To roll back:  mgn workspace delete $CLUSTER_ID $CANARY_NAME"
