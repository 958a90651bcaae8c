#!/usr/bin/env bash
# Deploy one workspace to every cluster of a federation, one cluster after another.
#
#   ./deploy-federated.sh [FEDERATION.yaml] [WORKSPACE.yaml]
#
# Needs: mgn, yq (either the jq wrapper or mikefarah's yq: only `yq -r PATH FILE` is used).
# Env:   MGN_API_URL, MGN_API_TOKEN (from your CI secrets); WAIT_TIMEOUT (default 5m).
# Exit:  0 every cluster has the workspace Running; 1 a create or a wait failed; 2 usage.
#
# `mgn federation deploy FEDERATION.yaml WORKSPACE.yaml` does this properly: it runs each
# cluster's preflight gate first and honours deployment.mode, max_parallel, wait_for_ready and
# rollback_on_failure. This script is the plain loop, for pipelines that want one.
set -euo pipefail

FEDERATION_CONFIG="${1:-federation.yaml}"
WORKSPACE_SPEC="${2:-workspace-codeserver.yaml}"
WAIT_TIMEOUT="${WAIT_TIMEOUT:-5m}"

for tool in mgn yq; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "error: '$tool' is required but not on PATH" >&2
        exit 2
    fi
done
for file in "$FEDERATION_CONFIG" "$WORKSPACE_SPEC"; do
    if [ ! -r "$file" ]; then
        echo "error: cannot read $file" >&2
        exit 2
    fi
done

CLUSTERS=$(yq -r '.federation.clusters[].id' "$FEDERATION_CONFIG")
WORKSPACE_NAME=$(yq -r '.workspace.name' "$WORKSPACE_SPEC")
IMAGE=$(yq -r '.workspace.image' "$WORKSPACE_SPEC")
if [ -z "$CLUSTERS" ] || [ -z "$WORKSPACE_NAME" ] || [ "$WORKSPACE_NAME" = null ] \
        || [ -z "$IMAGE" ] || [ "$IMAGE" = null ]; then
    echo "error: need .federation.clusters[].id in $FEDERATION_CONFIG and .workspace.name/.image in $WORKSPACE_SPEC" >&2
    exit 2
fi

echo "Deploying workspace '$WORKSPACE_NAME' ($IMAGE) to: ${CLUSTERS//$'\n'/ }"

created=()
failed=()
for cluster in $CLUSTERS; do
    echo "--- $cluster: create"
    # stderr is kept: a refusal or an API error says why.
    if mgn workspace create "$cluster" --name "$WORKSPACE_NAME" --image "$IMAGE"; then
        created+=("$cluster")
    else
        failed+=("$cluster")
    fi
done

ready=()
for cluster in ${created[@]+"${created[@]}"}; do
    echo "--- $cluster: wait (timeout $WAIT_TIMEOUT)"
    # A wait that times out is a failed deployment (the old script ignored it with `|| true`).
    if mgn workspace wait "$cluster" "$WORKSPACE_NAME" --timeout "$WAIT_TIMEOUT"; then
        ready+=("$cluster")
    else
        failed+=("$cluster")
    fi
done

echo "===================================="
echo "Deployment summary: ${#ready[@]} ready, ${#failed[@]} failed"
for cluster in ${ready[@]+"${ready[@]}"}; do echo "  ok      $cluster"; done
for cluster in ${failed[@]+"${failed[@]}"}; do echo "  FAILED  $cluster"; done

if [ "${#failed[@]}" -ne 0 ]; then
    exit 1
fi
exit 0
