#!/usr/bin/env bash
# Deploy Rampart to Google Cloud as a private Cloud Run service (HIPAA profile):
#   approved US region only, --no-allow-unauthenticated, --ingress=internal, a dedicated service
#   account per function, Secret Manager secrets mounted as files (never environment variables),
#   bounded instances, explicit timeout, memory, CPU and concurrency.
#
#   ./deploy.sh --project P --stage dry-run --dry-run   # every gcloud command, none run
#   ./deploy.sh --project P --stage dry-run             # a first rollout: every rule describes, none acts
#   ./deploy.sh --project P --scope org --scope-id 123456789012 --yes
#   ./deploy.sh --project P --uninstall                 # remove everything, sinks first
#
# Steps: what the policy puts in force (and a refusal if rules act with nowhere to alert),
# infra/bootstrap.sh (APIs, key, topics, secrets, accounts, roles), the policy secret
# (infra/policy.sh), check the alert secrets have values, `gcloud run deploy` each function,
# infra/triggers.sh (invoker grant, push subscription or Eventarc trigger, then the audit-log
# sink), Rampart's own monitoring (infra/monitoring.sh), then removing what an earlier layout
# left (infra/lifecycle.sh). Stops at the first failure and names the step; every step is safe
# to re-run.
#
# Why `gcloud run deploy --function`: it is the current, documented way to deploy a Cloud Run
# function from source (`gcloud functions deploy --gen2` drives the older Cloud Functions API),
# and it takes every Cloud Run flag used here (--ingress, --set-secrets file mounts,
# --min/--max-instances, --concurrency) directly.
#
# Why --ingress=internal works: Cloud Run counts Pub/Sub push and Eventarc deliveries from the
# same project (or VPC-SC perimeter) as internal traffic (gcloud run deploy --help, "internal";
# cloud.google.com/run/docs/securing/ingress). The subscriptions and triggers live in --project,
# with the functions, so nothing else, including the internet, can reach them.

cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=infra/lib.sh
source infra/lib.sh
# shellcheck source=infra/bootstrap.sh
source infra/bootstrap.sh
# shellcheck source=infra/triggers.sh
source infra/triggers.sh
# shellcheck source=infra/sweep.sh
source infra/sweep.sh
# shellcheck source=infra/policy.sh
source infra/policy.sh
# shellcheck source=infra/lifecycle.sh
source infra/lifecycle.sh
# shellcheck source=infra/monitoring.sh
source infra/monitoring.sh

# The Python that CI tests Rampart on (.ci/run, Python 3.11): deploy on the same one.
BASE_IMAGE=python311

# A mounted secret without a version makes the deploy fail; say how to add one, without ever
# reading or printing a value.
rampart_check_secret_values() {
    ((${#SECRET_MOUNTS[@]})) || return 0
    step "check the alert secrets the policy reads have a value (the values are never read)"
    local mount secret version missing=()
    for mount in "${SECRET_MOUNTS[@]}"; do
        secret=${mount#*=}
        version=$(gc_value "projects/$PROJECT/secrets/$secret/versions/1" secrets versions list "$secret" \
            --project="$PROJECT" --filter=state:ENABLED --limit=1 --format='value(name)')
        [[ -n $version ]] || missing+=("$secret")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    note ""
    note "Secret Manager holds no value yet for: ${missing[*]}. Add each (typed, not echoed, not in history):"
    for secret in "${missing[@]}"; do
        note "  read -rs VALUE && printf '%s' \"\$VALUE\" | gcloud secrets versions add $secret --project=$PROJECT --data-file=- ; unset VALUE"
    done
    note "then run this command again."
    RAMPART_STEP="alert secrets have no value"
    return 1
}

rampart_deploy_functions() {
    local i fn svc sa rules secrets env
    # PATH=SECRET:latest with PATH starting with "/": a file mount. For the policy, a mount (not an
    # environment variable) is what makes a new version take effect without a redeploy.
    secrets=(--set-secrets="$(rampart_secret_flag)")
    if [[ -n $KMS_KEY ]]; then
        note "note: Cloud Run itself is not CMEK-encrypted here: gcloud deploys CMEK functions only from a"
        note "  pre-staged Cloud Storage source into a CMEK Artifact Registry repository. The functions keep no"
        note "  data; run_cmek_missing (alert mode) will report them unless the policy exempts them."
    fi
    for i in "${!FUNCTION_NAMES[@]}"; do
        fn=${FUNCTION_NAMES[i]}
        svc=${FUNCTION_SERVICES[i]}
        sa=${FUNCTION_SAS[i]}
        rules=${FUNCTION_RULES[i]:-every enabled rule}
        step "deploy $svc (entry point ${FUNCTION_TARGETS[i]}: $rules)"
        env=(--set-env-vars="$(rampart_env_vars "$i")")
        gc run deploy "$svc" --source=. --function="${FUNCTION_TARGETS[i]}" --base-image="$BASE_IMAGE" \
            --region="$REGION" --project="$PROJECT" \
            --service-account="$sa" --build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_EMAIL" \
            --no-allow-unauthenticated --invoker-iam-check --ingress=internal \
            "${secrets[@]}" "${env[@]}" \
            --min-instances="$MIN_INSTANCES" --max-instances="$MAX_INSTANCES" \
            --memory="$MEMORY" --cpu="$CPU" --timeout="$TIMEOUT" --concurrency="$CONCURRENCY" --cpu-boost \
            --labels=app=rampart --description="Rampart: $rules" --quiet
    done
    # The dead-letter consumer: alerts only (no remediation), so the first function's account serves.
    step "deploy $RAMPART_DEAD_LETTER_SERVICE (entry point rampart_dead_letter: alerts on every dead letter)"
    gc run deploy "$RAMPART_DEAD_LETTER_SERVICE" --source=. --function=rampart_dead_letter --base-image="$BASE_IMAGE" \
        --region="$REGION" --project="$PROJECT" \
        --service-account="${FUNCTION_SAS[0]}" --build-service-account="projects/$PROJECT/serviceAccounts/$BUILD_EMAIL" \
        --no-allow-unauthenticated --invoker-iam-check --ingress=internal \
        "${secrets[@]}" "${env[@]}" \
        --min-instances=0 --max-instances=2 \
        --memory="$MEMORY" --cpu="$CPU" --timeout="$TIMEOUT" --concurrency="$CONCURRENCY" \
        --labels=app=rampart --description="Rampart: dead-letter consumer" --quiet
}

# Each function's environment, none of it secret, in gcloud's ^;^ list form (emails hold no ";"):
#   RAMPART_POLICY          where the policy is mounted;
#   RAMPART_OWN_PRINCIPALS  the exact emails of Rampart's own service accounts, space-separated: their
#                           changes come back as audit entries and are left alone, with no pattern in
#                           the policy that someone else's account could match.
#   RAMPART_RECORDS_PROJECT, RAMPART_RECORDS_DATABASE  where quarantine records are kept: the
#                           alert-dedupe database, which only Rampart's accounts may write;
#   RAMPART_IDENTITY, RAMPART_ACTIONS_TOPIC  with --functions split: the function's part, and where
#                           the detector asks the writers to act.
rampart_env_vars() {
    # THREADS: the Functions Framework's gunicorn threads, one per request Cloud Run lets in (its
    # default is 4 per CPU, so a --concurrency above that would only queue inside the instance).
    local i=$1 vars=("RAMPART_POLICY=$RAMPART_POLICY_MOUNT" "THREADS=$CONCURRENCY")
    vars+=("RAMPART_OWN_PRINCIPALS=${FUNCTION_SAS[*]}")
    if [[ -n $DEDUPE_DATABASE ]]; then
        # Quarantine records (what `release` may put back) live in Rampart's own database, which
        # only its accounts can write: never on the service, where a developer could edit them.
        vars+=("RAMPART_RECORDS_PROJECT=$DEDUPE_PROJECT" "RAMPART_RECORDS_DATABASE=$DEDUPE_DATABASE")
    fi
    if [[ -n ${FUNCTION_IDENTITIES[i]} ]]; then
        vars+=("RAMPART_IDENTITY=${FUNCTION_IDENTITIES[i]}" "RAMPART_ACTIONS_TOPIC=projects/$PROJECT/topics/$RAMPART_ACTIONS_TOPIC")
    fi
    local IFS=';'
    printf '^;^%s' "${vars[*]}"
}

# /etc/rampart/policy/policy.yaml=rampart-policy:latest,/secrets/slack/webhook-url=rampart-slack-webhook:latest,...
rampart_secret_flag() {
    local mount out=("$RAMPART_POLICY_MOUNT=$RAMPART_SECRET_POLICY:latest")
    for mount in "${SECRET_MOUNTS[@]}"; do
        out+=("$mount:latest")
    done
    local IFS=,
    printf '%s' "${out[*]}"
}

rampart_summary() {
    rampart_is_dry && return 0
    if rampart_is_local; then
        note ""
        note "local run done: the Pub/Sub (and KMS) steps ran against the loopback stand-ins; every other step was skipped, as listed."
        return 0
    fi
    note ""
    note "Rampart is deployed: ${FUNCTION_SERVICES[*]} in $PROJECT/$REGION, watching $SCOPE $SCOPE_ID."
    note "Dead letters: gcloud pubsub subscriptions pull $RAMPART_DEAD_LETTER_HOLD --project=$PROJECT --limit=10"
    note "Logs:         gcloud logging read 'resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${FUNCTION_SERVICES[0]}\"' --project=$PROJECT --limit=20"
    note "New policy:   python main.py policy push FILE --project=$PROJECT   (in force within seconds, no redeploy)"
}

main() {
    rampart_init "deploy.sh" "$@"
    if ((UNINSTALL)); then
        rampart_uninstall_confirm
        rampart_uninstall
        return 0
    fi
    rampart_rollout_summary
    rampart_confirm
    rampart_bootstrap
    rampart_policy_secret
    rampart_check_secret_values
    rampart_deploy_functions
    rampart_triggers
    rampart_sweep
    rampart_monitoring
    rampart_prune
    rampart_summary
}

main "$@"
