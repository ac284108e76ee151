#!/usr/bin/env bash
# Deploys examples/ the way a shell script chains the binaries: each step prints its outputs
# with --output env, and `eval` puts them into the environment, where the next step's flags
# read them (ECSKIT_IMAGE_URI, ECSKIT_TASK_ROLE_ARN, ECSKIT_TASK_DEFINITION_ARN, ...).
#
#   examples/deploy.sh                  # binaries from target/debug, or set BIN=
#   eval "$(cargo xtask local env)" && examples/deploy.sh     # against the local stack
#
# A step that fails stops the script (set -e) with that step's exit code: 1 AWS or Docker
# failure, 2 bad input (nothing changed), 3 the deployment (or the migration) ran but failed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
BIN="${BIN:-$here/../target/debug}"
APP="${APP:-ecskit-demo}"
IMAGE="${IMAGE:-ecskit-demo:1}"
BUCKET="${BUCKET:-ecskit-demo-config}"
PREFIX="${PREFIX:-$APP/config}"
export AWS_REGION="${AWS_REGION:-us-west-2}"

# `eval "$(step ...)"` would hide a failing step: eval's status is that of the empty string it
# was given. Capture first, so a failure stops the script with the step's exit code.
run() {
  local out
  out="$("$@" --output env)" || exit $?
  eval "$out"
}

# 1. The image, the roles and the config files do not depend on each other.
run "$BIN/image-push" "$IMAGE" --repository "$APP" --tag 1 --tag latest
run "$BIN/role-create" --name "$APP" --bucket "$BUCKET" --prefix "$PREFIX" --access read
run "$BIN/config-upload" --bucket "$BUCKET" --prefix "$PREFIX" "$here/config"
echo "image:  $ECSKIT_IMAGE_URI" >&2
echo "roles:  $ECSKIT_TASK_ROLE_ARN, $ECSKIT_EXECUTION_ROLE_ARN" >&2
echo "config: $ECSKIT_CONFIG_URI" >&2

# 2. The task definition: --image, --task-role-arn and --execution-role-arn read the
#    variables above, and ${ECSKIT_*} in the file are filled in from them.
run "$BIN/taskdef-register" --file "$here/taskdef.json" --family "$APP"
echo "task definition: $ECSKIT_TASK_DEFINITION_ARN" >&2

# 3. The migration, when MIGRATE names its command (MIGRATE='bin/migrate --up'): one task of
#    the new task definition, before the service runs it; its lines on stderr, and a failing
#    migration (exit 3, naming the container and its code) stops the script here, the service
#    still on its previous revision.
if [ -n "${MIGRATE:-}" ]; then
  run "$BIN/task-run" --cluster "$APP" --command "$MIGRATE" --logs
  echo "migration: task $ECSKIT_TASK_ARN exited $ECSKIT_EXIT_CODE" >&2
fi

# 4. The service: --task-definition reads ECSKIT_TASK_DEFINITION_ARN; it waits until the
#    deployment is stable or failed.
run "$BIN/service-run" --cluster "$APP" --service "$APP" --desired-count 1 --launch-type FARGATE
echo "service: $ECSKIT_SERVICE_ARN (deployment $ECSKIT_DEPLOYMENT_ID)" >&2
