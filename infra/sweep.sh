#!/usr/bin/env bash
# shellcheck disable=SC2153 # PROJECT, SCOPE, WORK, ... are set by infra/lib.sh, which sources this file's callers
# The posture sweep (shared/sweep): every rule run on the live state of every resource in scope,
# daily by default. What it deploys, in the order that loses nothing:
#   APIs (Cloud Asset Inventory, Cloud Scheduler); the sweep topic and its dead-letter topic (held
#   a week); the sweep identity rampart-sweep@ with a custom role at the watched scope: the
#   asset-search permissions, the enabled rules' read permissions, and their write permissions only
#   when the policy's sweep.max_mode is enforce; Firestore (progress, dedupe), the alert topic and
#   the alert secrets; the function rampart-sweep (entry point rampart_sweep); its push
#   subscription (retries, dead letters); last, the Cloud Scheduler job that publishes the request.
#
#   infra/sweep.sh --project P [--scope org --scope-id ORG] [--sweep-schedule '0 6 * * *'] [--dry-run]
# deploy.sh runs this after the event functions' triggers (unless --no-sweep); run it alone to
# change the schedule or the sweep's role after a policy change.

RAMPART_SWEEP_SERVICE=rampart-sweep
RAMPART_SWEEP_SA=rampart-sweep
RAMPART_SWEEP_ROLE=rampart_sweep
RAMPART_SWEEP_TOPIC=rampart-sweep
RAMPART_SWEEP_DEAD_LETTER_TOPIC=rampart-sweep-dead-letter
RAMPART_SWEEP_DEAD_LETTER_HOLD=rampart-sweep-dead-letter-hold
RAMPART_SWEEP_SUBSCRIPTION=rampart-sweep-push
RAMPART_SWEEP_JOB=rampart-sweep
# A shard is one page (<= 500 resources); its actions and alerts fit the longest push deadline.
RAMPART_SWEEP_TIMEOUT=600
RAMPART_SWEEP_MAX_INSTANCES=10
# A shard whose alert waits for the record of the work is redelivered meanwhile: a larger budget.
RAMPART_SWEEP_MAX_DELIVERY_ATTEMPTS=10

rampart_sweep() {
    ((SWEEP)) || { note "sweep: skipped (--no-sweep)"; return 0; }
    rampart_sweep_generate
    rampart_sweep_bootstrap
    rampart_sweep_deploy
    rampart_sweep_triggers
}

# The sweep's Asset Inventory scope, and its role's permissions, from the policy through the CLI.
rampart_sweep_generate() {
    case $SCOPE in
        org) SWEEP_SCOPE="organizations/$SCOPE_ID" ;;
        folder) SWEEP_SCOPE="folders/$SCOPE_ID" ;;
        project) SWEEP_SCOPE="projects/$SCOPE_ID" ;;
    esac
    SWEEP_EMAIL="$RAMPART_SWEEP_SA@$PROJECT.iam.gserviceaccount.com"
    # The policy as deployed ($WORK/policy.deployed.yaml: --stage caps it), as the sweep will read it.
    local generated
    generated=$("$PYTHON" - "$WORK/policy.deployed.yaml" "$WORK" "$STAGE" <<'PY' || die "could not generate the sweep's role from $POLICY (see above)"
import io
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, os.getcwd())
from shared.cli import main as cli  # what `python main.py` runs
from shared.config import load_policy
from shared.model import Mode
from shared.sweep.permissions import sweep_permissions

policy, work, stage = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
out = io.StringIO()
if cli(["iam-role", "--format", "list", "--policy", policy], out=out) != 0:
    sys.exit(f"`python main.py iam-role --format list --policy {policy}` failed")
loaded = load_policy(policy)
mode = loaded.policy.sweep.max_mode
if stage in ("dry-run", "alert"):  # --stage caps every rule: the sweep cannot act more strongly
    mode = min(mode, Mode(stage), key=[Mode.OFF, Mode.ALERT, Mode.DRY_RUN, Mode.ENFORCE].index)
perms = sweep_permissions(out.getvalue().split(), mode)
role = {"title": "Rampart posture sweep",
        "description": f"Asset search and the enabled rules' reads; writes only with sweep.max_mode enforce (here: {mode.value})",
        "stage": "GA", "includedPermissions": perms}
(work / "sweep.role.yaml").write_text(yaml.safe_dump(role, sort_keys=False, width=200))
(work / "sweep.permissions").write_text("".join(p + "\n" for p in perms))
print(mode.value, loaded.policy.sweep.progress_collection)
PY
)
    read -r SWEEP_MODE SWEEP_COLLECTION <<<"$generated"
    note "sweep: $SWEEP_SCOPE, schedule '$SWEEP_SCHEDULE', at most $SWEEP_MODE ($(wc -l <"$WORK/sweep.permissions") permissions)"
}

rampart_sweep_bootstrap() {
    step "sweep: enable Cloud Asset Inventory and Cloud Scheduler"
    gc services enable cloudasset.googleapis.com cloudscheduler.googleapis.com firestore.googleapis.com --project="$PROJECT"

    step "sweep: topic $RAMPART_SWEEP_TOPIC (requests and shards) and its dead-letter topic"
    rampart_ensure_topics "$RAMPART_SWEEP_TOPIC" "$RAMPART_SWEEP_DEAD_LETTER_TOPIC"
    rampart_ensure_hold "$RAMPART_SWEEP_DEAD_LETTER_HOLD" "$RAMPART_SWEEP_DEAD_LETTER_TOPIC"

    step "sweep: identity $SWEEP_EMAIL and its role at the $SCOPE $SCOPE_ID"
    rampart_ensure_sa "$SWEEP_EMAIL" "Rampart posture sweep" \
        "Lists resources with Cloud Asset Inventory and runs Rampart's rules on them (shared/sweep)"
    local parent role_name
    parent=$(rampart_role_parent)
    role_name=$(rampart_role_name "$RAMPART_SWEEP_ROLE")
    if gc_exists iam roles describe "$RAMPART_SWEEP_ROLE" "$parent" --format='value(name)'; then
        gc iam roles update "$RAMPART_SWEEP_ROLE" "$parent" --file="$WORK/sweep.role.yaml" --quiet
    else
        gc iam roles create "$RAMPART_SWEEP_ROLE" "$parent" --file="$WORK/sweep.role.yaml"
    fi
    rampart_scope_binding --member="serviceAccount:$SWEEP_EMAIL" --role="$role_name"

    step "sweep: publish shards, record progress, alert"
    gc_bind pubsub topics add-iam-policy-binding "$RAMPART_SWEEP_TOPIC" --project="$PROJECT" \
        --member="serviceAccount:$SWEEP_EMAIL" --role=roles/pubsub.publisher
    local database=${DEDUPE_DATABASE:-(default)} project=${DEDUPE_PROJECT:-$PROJECT}
    gc_bind projects add-iam-policy-binding "$project" --member="serviceAccount:$SWEEP_EMAIL" \
        --role=roles/datastore.user \
        --condition="expression=resource.name == \"projects/$project/databases/$database\",title=rampart-sweep-progress,description=Rampart sweep progress and alert dedupe"
    # Sweep documents carry expire_at (90 days, shared/sweep/progress.py): TTL policies delete them
    # (the sweep's collection, sweep.progress_collection, and its shards subcollections).
    local group
    for group in "$SWEEP_COLLECTION" shards; do
        gc firestore fields ttls update expire_at --collection-group="$group" \
            --database="$database" --enable-ttl --async --project="$project"
    done
    if [[ -n $ALERTS_TOPIC_PATH ]]; then
        gc_bind pubsub topics add-iam-policy-binding "$ALERTS_TOPIC_PATH" \
            --member="serviceAccount:$SWEEP_EMAIL" --role=roles/pubsub.publisher
    fi
    local secret
    # The policy (mounted from its secret, as by every function) and the alert channels' secrets.
    for secret in "$RAMPART_SECRET_POLICY" "${SECRET_MOUNTS[@]#*=}"; do
        gc_bind secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
            --member="serviceAccount:$SWEEP_EMAIL" --role=roles/secretmanager.secretAccessor
    done
}

rampart_sweep_deploy() {
    # The policy and the alert secrets mounted as files, as for the event functions (deploy.sh).
    local secrets=(--set-secrets="$(rampart_secret_flag)")
    local env="RAMPART_POLICY=$RAMPART_POLICY_MOUNT,RAMPART_SWEEP_TOPIC=projects/$PROJECT/topics/$RAMPART_SWEEP_TOPIC"
    step "deploy $RAMPART_SWEEP_SERVICE (entry point rampart_sweep: plans sweep requests, judges shards)"
    # One shard at a time per instance (a page of up to 500 resources); instances scale out.
    gc run deploy "$RAMPART_SWEEP_SERVICE" --source=. --function=rampart_sweep --base-image="$BASE_IMAGE" \
        --region="$REGION" --project="$PROJECT" \
        --service-account="$SWEEP_EMAIL" --build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_EMAIL" \
        --no-allow-unauthenticated --invoker-iam-check --ingress=internal \
        "${secrets[@]}" --set-env-vars="$env" \
        --min-instances=0 --max-instances="$RAMPART_SWEEP_MAX_INSTANCES" \
        --memory="$MEMORY" --cpu="$CPU" --timeout="$RAMPART_SWEEP_TIMEOUT" --concurrency=1 --cpu-boost \
        --labels=app=rampart --description="Rampart: posture sweep" --quiet
}

rampart_sweep_triggers() {
    local url sub=$RAMPART_SWEEP_SUBSCRIPTION
    step "sweep: invoker, push delivery from $RAMPART_SWEEP_TOPIC, then the schedule"
    rampart_project_number
    url=$(rampart_service_url "$RAMPART_SWEEP_SERVICE")
    gc_bind run services add-iam-policy-binding "$RAMPART_SWEEP_SERVICE" --region="$REGION" --project="$PROJECT" \
        --member="serviceAccount:$INVOKER_EMAIL" --role=roles/run.invoker
    gc_bind pubsub topics add-iam-policy-binding "$RAMPART_SWEEP_DEAD_LETTER_TOPIC" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.publisher
    local push=(--push-endpoint="$url/projects/$PROJECT/topics/$RAMPART_SWEEP_TOPIC"
        --push-auth-service-account="$INVOKER_EMAIL" --push-auth-token-audience="$url"
        --ack-deadline="$RAMPART_SWEEP_TIMEOUT" --min-retry-delay="$RAMPART_MIN_RETRY_DELAY"
        --max-retry-delay="$RAMPART_MAX_RETRY_DELAY"
        --dead-letter-topic="projects/$PROJECT/topics/$RAMPART_SWEEP_DEAD_LETTER_TOPIC"
        --max-delivery-attempts="$RAMPART_SWEEP_MAX_DELIVERY_ATTEMPTS" --project="$PROJECT")
    rampart_subscriptions
    if awk -F'\t' -v want="projects/$PROJECT/subscriptions/$sub" '$1 == want {found = 1} END {exit !found}' \
        <<<"$RAMPART_SUBSCRIPTIONS"; then
        gc pubsub subscriptions update "$sub" "${push[@]}"
    else
        gc pubsub subscriptions create "$sub" --topic="$RAMPART_SWEEP_TOPIC" "${push[@]}" "$RAMPART_NEVER_EXPIRE" \
            --message-retention-duration=7d --labels=app=rampart
    fi
    gc_bind pubsub subscriptions add-iam-policy-binding "$sub" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber

    # Cloud Scheduler publishes as its own service agent, which needs publish on the topic.
    gc_bind pubsub topics add-iam-policy-binding "$RAMPART_SWEEP_TOPIC" --project="$PROJECT" \
        --member="serviceAccount:service-$PROJECT_NUMBER@gcp-sa-cloudscheduler.iam.gserviceaccount.com" \
        --role=roles/pubsub.publisher
    local body="{\"type\":\"rampart.sweep.request\",\"scopes\":[\"$SWEEP_SCOPE\"]}"
    local job=(--location="$REGION" --project="$PROJECT" --schedule="$SWEEP_SCHEDULE" --time-zone=Etc/UTC
        --topic="projects/$PROJECT/topics/$RAMPART_SWEEP_TOPIC" --message-body="$body"
        --attributes=type=rampart.sweep.request)
    if gc_exists scheduler jobs describe "$RAMPART_SWEEP_JOB" --location="$REGION" --project="$PROJECT" --format='value(name)'; then
        gc scheduler jobs update pubsub "$RAMPART_SWEEP_JOB" "${job[@]}"
    else
        gc scheduler jobs create pubsub "$RAMPART_SWEEP_JOB" "${job[@]}" \
            --description="Rampart posture sweep over $SWEEP_SCOPE (python main.py scan runs the same on demand)"
    fi
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
    # shellcheck source=/dev/null
    source infra/lib.sh
    # shellcheck source=/dev/null
    source infra/bootstrap.sh
    # shellcheck source=/dev/null
    source infra/triggers.sh
    BASE_IMAGE=python311  # as deploy.sh
    # deploy.sh's, for this script run alone: the policy and alert secrets as file mounts.
    rampart_secret_flag() {
        local mount out=("$RAMPART_POLICY_MOUNT=$RAMPART_SECRET_POLICY:latest")
        for mount in "${SECRET_MOUNTS[@]}"; do out+=("$mount:latest"); done
        local IFS=,
        printf '%s' "${out[*]}"
    }
    rampart_init "infra/sweep.sh" "$@"
    rampart_confirm
    rampart_sweep
    note ""
    note "sweep done: runs '$SWEEP_SCHEDULE' (UTC); now: gcloud scheduler jobs run $RAMPART_SWEEP_JOB --location=$REGION --project=$PROJECT"
fi
