# shellcheck shell=bash disable=SC2034
# (SC2034: the globals set here are read by deploy.sh and infra/*.sh, which source this file.)
# Rampart deployment helpers, sourced by deploy.sh, infra/bootstrap.sh and infra/triggers.sh.
#
# Every gcloud call goes through one of four wrappers, so a dry run, a local run and a real
# run can never disagree about what would happen:
#   gc         a change (create, update, deploy)
#   gc_bind    an IAM binding (output discarded; retried while a new service account propagates)
#   gc_exists  a describe or list before a create: 0 exists, 1 NOT_FOUND; any other error stops the run
#   gc_value   a lookup whose output a later step needs (project number, URL, writer identity)
#
# --dry-run prints each command as `+ gcloud ...` (shell-quoted, one per line, on stdout) and
# calls nothing: no gcloud, no credentials. It shows a first run from an empty project.
# RAMPART_GCLOUD_LOCAL=1 runs the steps that have a local stand-in (Pub/Sub emulator, the
# KMS stand-in) for real, on loopback only, and prints every other step as skipped.

RAMPART_APPROVED_REGIONS=(us-central1 us-east1 us-east4 us-west1 us-west2)
RAMPART_SECRET_SLACK=rampart-slack-webhook
RAMPART_SECRET_SMTP=rampart-smtp-password
RAMPART_SECRET_POLICY=rampart-policy
# The policy secret is mounted here, in a directory of its own (Cloud Run mounts one secret per directory).
RAMPART_POLICY_MOUNT=/etc/rampart/policy/policy.yaml
RAMPART_DEAD_LETTER_TOPIC=rampart-dead-letter
RAMPART_ACTIONS_TOPIC=rampart-actions
RAMPART_LOGS_ROLE=rampart_logs_reader
RAMPART_DEAD_LETTER_HOLD=rampart-dead-letter-hold
RAMPART_DEAD_LETTER_SERVICE=rampart-dead-letter # entry point rampart_dead_letter: alerts on every dead letter
RAMPART_DEAD_LETTER_PUSH=rampart-dead-letter-push
RAMPART_ALERTS_TOPIC=rampart-alerts
RAMPART_INVOKER_SA=rampart-invoker
RAMPART_BUILD_SA=rampart-build
RAMPART_KEY_RING=rampart
RAMPART_KEY=rampart-data
RAMPART_MAX_DELIVERY_ATTEMPTS=5
RAMPART_MIN_RETRY_DELAY=10s
RAMPART_MAX_RETRY_DELAY=600s

# ---------------------------------------------------------------------------------------------
# output, errors, steps

RAMPART_STEP="start"

note() { printf '%s\n' "$*" >&2; }

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

usage_error() {
    printf 'error: %s\n(see %s --help)\n' "$*" "${RAMPART_PROG:-deploy.sh}" >&2
    exit 2
}

step() {
    RAMPART_STEP=$*
    note ""
    note "== $*"
}

# Called by the ERR trap: name the step that failed, then stop (set -e exits right after).
rampart_on_err() {
    local rc=$1 cmd=$2
    # A failing command substitution reports in its parent, once.
    [[ $BASHPID == "$$" ]] || return 0
    # The wrappers run `gcloud "$@"` (or return its status): name the gcloud command itself.
    # shellcheck disable=SC2016 # the literal text of $BASH_COMMAND, not an expansion
    if [[ ($cmd == 'gcloud "$@"' || $cmd == 'return "$rc"') && -n ${RAMPART_LAST_CMD:-} ]]; then
        cmd=${RAMPART_LAST_CMD% }
    fi
    printf '\nerror: step "%s" failed (exit %s): %s\n' "$RAMPART_STEP" "$rc" "$cmd" >&2
    printf 'Nothing after it ran. Fix the cause above and run the same command again: every step is safe to re-run.\n' >&2
}

rampart_strict() {
    if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
        printf 'error: these scripts need bash 4.4 or newer; found %s (macOS: brew install bash)\n' "$BASH_VERSION" >&2
        exit 1
    fi
    set -Eeuo pipefail
    trap 'rampart_on_err "$?" "$BASH_COMMAND"' ERR
    # fd 3 is where a dry run prints its commands, whatever captures fd 1.
    exec 3>&1
    export CLOUDSDK_CORE_DISABLE_PROMPTS=1
}

# `+ gcloud ...`, each argument shell-quoted, so the line can be pasted and run as is.
show_cmd() {
    local line
    printf -v line '%q ' "$@"
    printf '+ %s\n' "${line% }"
}

# ---------------------------------------------------------------------------------------------
# the gcloud wrappers

rampart_is_dry() { [[ ${DRY_RUN:-0} == 1 ]]; }
rampart_is_local() { [[ ${RAMPART_GCLOUD_LOCAL:-0} == 1 ]]; }

# Which API a gcloud command talks to, when it has no local stand-in (empty when it has one).
rampart_no_standin() {
    case "$1 ${2:-} ${3:-}" in
        pubsub\ *\ *-iam-policy*) echo "Pub/Sub IAM (the emulator answers 501 UNIMPLEMENTED)" ;;
        pubsub\ topics\ * | pubsub\ subscriptions\ *) echo "" ;;
        kms\ *) echo "" ;;
        services\ * | beta\ services\ *) echo "Service Usage" ;;
        projects\ * | organizations\ * | resource-manager\ *) echo "Resource Manager" ;;
        iam\ *) echo "IAM" ;;
        secrets\ *) echo "Secret Manager" ;;
        logging\ *) echo "Cloud Logging" ;;
        firestore\ *) echo "the Firestore admin API (the emulator serves documents, not databases)" ;;
        run\ *) echo "Cloud Run (gcloud run speaks the regional v1 API, which the stand-in does not serve)" ;;
        eventarc\ *) echo "Eventarc" ;;
        *) echo "$1" ;;
    esac
}

# In local mode, true (after saying so) when the command has no stand-in and is skipped.
rampart_skipped() {
    rampart_is_local || return 1
    local api
    api=$(rampart_no_standin "$@")
    [[ -n $api ]] || return 1
    note "skipped (RAMPART_GCLOUD_LOCAL=1: no local stand-in for $api): $(show_cmd gcloud "$@")"
    return 0
}

gc() {
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        return 0
    fi
    rampart_skipped "$@" && return 0
    show_cmd gcloud "$@" >&2
    printf -v RAMPART_LAST_CMD '%q ' gcloud "$@"
    gcloud "$@"
}

# An IAM binding: idempotent by nature (adding an existing binding changes nothing). A service
# account created seconds ago can be unknown to IAM for a while; only that error is retried.
gc_bind() {
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        return 0
    fi
    rampart_skipped "$@" && return 0
    local attempt=1 errfile rc
    errfile=$(mktemp)
    printf -v RAMPART_LAST_CMD '%q ' gcloud "$@"
    while true; do
        show_cmd gcloud "$@" >&2
        rc=0
        gcloud "$@" >/dev/null 2>"$errfile" || rc=$?
        if ((rc == 0)); then
            rm -f "$errfile"
            return 0
        fi
        if ((attempt < 6)) && grep -qiE "service account .*does not exist" "$errfile"; then
            note "   (IAM does not know the service account yet; retrying in 10 s, attempt $attempt of 5)"
            attempt=$((attempt + 1))
            sleep 10
            continue
        fi
        cat "$errfile" >&2
        rm -f "$errfile"
        return "$rc"
    done
}

# 0 if the described resource exists, 1 if it does not; any other failure (permission denied,
# API disabled, network) stops the run rather than being mistaken for "absent".
gc_exists() {
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        return 1
    fi
    rampart_skipped "$@" && return 1
    local err
    show_cmd gcloud "$@" >&2
    if err=$(gcloud "$@" 2>&1 >/dev/null); then
        return 0
    fi
    if grep -qE "NOT_FOUND|not found|does not exist|was not found" <<<"$err"; then
        return 1
    fi
    printf '%s\n' "$err" >&2
    die "could not tell whether it exists: $(show_cmd gcloud "$@")"
}

# For a resource the operator must provide (an existing KMS key): stop, saying so, if it is absent.
gc_must_exist() {
    local what=$1
    shift
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        return 0
    fi
    rampart_skipped "$@" && return 0
    gc_exists "$@" || die "$what not found: $(show_cmd gcloud "$@")"
}

# Prints the command's output; in a dry run or when skipped locally, prints PLACEHOLDER instead.
gc_value() {
    local placeholder=$1
    shift
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        printf '%s\n' "$placeholder"
        return 0
    fi
    if rampart_skipped "$@"; then
        printf '%s\n' "$placeholder"
        return 0
    fi
    show_cmd gcloud "$@" >&2
    printf -v RAMPART_LAST_CMD '%q ' gcloud "$@"
    gcloud "$@"
}

# ---------------------------------------------------------------------------------------------
# options (shared by deploy.sh and infra/*.sh)

rampart_defaults() {
    PROJECT=""
    REGION=us-central1
    SCOPE=project
    SCOPE_ID=""
    ORG_ID=""
    FUNCTIONS=rampart
    TRIGGER=push
    POLICY=config/policy.yaml
    KMS_KEY=""
    CREATE_KMS_KEY=0
    PROJECT_NUMBER=""
    MIN_INSTANCES=1
    MAX_INSTANCES=10
    MEMORY=512Mi
    CPU=1
    TIMEOUT=300
    CONCURRENCY=16
    SWEEP=1
    SWEEP_SCHEDULE="0 6 * * *"
    DRY_RUN=0
    YES=0
    STAGE=""
    NO_ALERTS=0
    UNINSTALL=0
    ALERT_CHANNEL=""
    SILENCE_ALERT_AFTER=6h
    FAILURE_RATE=1
    PYTHON=${PYTHON:-.venv/bin/python}
    WORK=${RAMPART_WORK_DIR:-.local/deploy}
}

rampart_usage() {
    cat <<EOF
Usage: ${RAMPART_PROG} --project PROJECT [options]

Deploys Rampart as a private Cloud Run service: an approved US region,
no unauthenticated access, internal ingress, a dedicated service account per function,
secrets mounted as files from Secret Manager, bounded instances. Safe to re-run.

  --project ID          project that runs Rampart (required)
  --region REGION       one of: ${RAMPART_APPROVED_REGIONS[*]} (default us-central1)
  --scope SCOPE         org | folder | project: what Rampart watches and remediates (default project)
  --scope-id ID         organization or folder number, or project id (default: --project)
  --org-id ID           with --scope folder: the organization that holds Rampart's custom roles
  --functions WHICH     rampart (one function, every enabled rule; default) | all (one function
                        per enabled rule) | RULE[,RULE...] | split (a read-only detector and a
                        Cloud Run and a KMS writer: README, Threat model)
  --trigger KIND        push (Pub/Sub push subscription, default) | eventarc
  --policy FILE         the policy to put in force (default config/policy.yaml): validated, then
                        added as a version of secret ${RAMPART_SECRET_POLICY}, which the functions mount
                        as a file; later changes need no redeploy: python main.py policy push FILE
  --stage STAGE         dry-run | alert | enforce: cap every rule's mode, for a first rollout
                        (dry-run, then alert, then enforce; see README "Deploying")
  --no-alerts           deploy rules that enforce even though the policy has no alert channel
  --alert-channel CH    Cloud Monitoring notification channel (projects/P/notificationChannels/N)
                        for Rampart's own health alerts: dead letters, invalid policy, failures, silence
  --silence-alert-after D  alert when no audit entry reaches Rampart for D (e.g. 30m, 6h; default 6h,
                        at most 23h: Cloud Monitoring's limit for metric-absence conditions)
  --failure-rate N      alert when rampart.event_failed exceeds N per minute over 5 minutes (default 1)
  --uninstall           remove everything Rampart created (sinks first), and say what was removed
  --kms-key KEY         projects/P/locations/REGION/keyRings/R/cryptoKeys/K: CMEK for Rampart's
                        topics, secrets and Firestore database
  --create-kms-key      create key ring ${RAMPART_KEY_RING} and key ${RAMPART_KEY} (90-day rotation) in --region and use it
  --project-number N    skip looking the project number up
  --min-instances N     (default 1)    --max-instances N   (default 10)
  --memory SIZE         (default 512Mi) --cpu N            (default 1)
  --timeout SECONDS     (default 300; the push ack deadline follows it)
  --concurrency N       (default 16: requests in flight per instance; the Functions Framework
                        runs as many threads (THREADS): an event mostly waits on Google's APIs)
  --sweep-schedule CRON when the posture sweep runs (Cloud Scheduler, UTC; default "0 6 * * *": daily)
  --no-sweep            deploy no posture sweep (infra/sweep.sh)
  --dry-run             print every gcloud command, one per line as "+ gcloud ...", and run none
  --yes                 do not ask for confirmation
  -h, --help

Environment: PYTHON (default .venv/bin/python), RAMPART_WORK_DIR (generated files, default
.local/deploy), RAMPART_GCLOUD_LOCAL=1 (loopback stand-ins only; see infra/README.md).
EOF
}

rampart_parse_args() {
    local opt val has_val
    while (($#)); do
        opt=$1
        val=""
        has_val=0
        shift
        if [[ $opt == --*=* ]]; then
            val=${opt#*=}
            opt=${opt%%=*}
            has_val=1
        fi
        case $opt in
            -h | --help)
                rampart_usage
                exit 0
                ;;
            --dry-run | --yes | --create-kms-key | --no-alerts | --uninstall | --no-sweep)
                ((has_val == 0)) || usage_error "$opt takes no value"
                case $opt in
                    --dry-run) DRY_RUN=1 ;;
                    --yes) YES=1 ;;
                    --no-alerts) NO_ALERTS=1 ;;
                    --uninstall) UNINSTALL=1 ;;
                    --no-sweep) SWEEP=0 ;;
                    *) CREATE_KMS_KEY=1 ;;
                esac
                continue
                ;;
            --project | --region | --scope | --scope-id | --org-id | --functions | --trigger | --policy | \
                --kms-key | --project-number | --min-instances | --max-instances | --memory | --cpu | \
                --timeout | --concurrency | --stage | --alert-channel | --silence-alert-after | --failure-rate | \
                --sweep-schedule)
                if ((has_val == 0)); then
                    (($#)) || usage_error "$opt needs a value"
                    val=$1
                    shift
                fi
                ;;
            -*) usage_error "unknown option $opt" ;;
            *) usage_error "unexpected argument '$opt'" ;;
        esac
        case $opt in
            --project) PROJECT=$val ;;
            --region) REGION=$val ;;
            --scope) SCOPE=$val ;;
            --scope-id) SCOPE_ID=$val ;;
            --org-id) ORG_ID=$val ;;
            --functions) FUNCTIONS=$val ;;
            --trigger) TRIGGER=$val ;;
            --policy) POLICY=$val ;;
            --kms-key) KMS_KEY=$val ;;
            --project-number) PROJECT_NUMBER=$val ;;
            --min-instances) MIN_INSTANCES=$val ;;
            --max-instances) MAX_INSTANCES=$val ;;
            --memory) MEMORY=$val ;;
            --cpu) CPU=$val ;;
            --timeout) TIMEOUT=$val ;;
            --concurrency) CONCURRENCY=$val ;;
            --stage) STAGE=$val ;;
            --alert-channel) ALERT_CHANNEL=$val ;;
            --silence-alert-after) SILENCE_ALERT_AFTER=$val ;;
            --failure-rate) FAILURE_RATE=$val ;;
            --sweep-schedule) SWEEP_SCHEDULE=$val ;;
        esac
    done
}

rampart_int_between() {
    local name=$1 value=$2 low=$3 high=$4
    if [[ $value =~ ^[0-9]+$ ]] && ((10#$value >= low && 10#$value <= high)); then
        return 0
    fi
    usage_error "expected $name to be a whole number from $low to $high; found '$value'"
}

rampart_validate() {
    local project_re='^[a-z][a-z0-9-]{4,28}[a-z0-9]$'
    [[ -n $PROJECT ]] || usage_error "--project is required"
    [[ $PROJECT =~ $project_re ]] || usage_error "expected --project to be a project id (6-30 lowercase letters, digits, hyphens); found '$PROJECT'"

    local r approved=0
    for r in "${RAMPART_APPROVED_REGIONS[@]}"; do
        [[ $REGION == "$r" ]] && approved=1
    done
    ((approved)) || die "region '$REGION' is not approved: Rampart deploys only to the HIPAA profile's approved US regions (${RAMPART_APPROVED_REGIONS[*]})"

    case $SCOPE in
        org | folder)
            [[ $SCOPE_ID =~ ^[0-9]{1,20}$ ]] || usage_error "expected --scope-id to be the numeric $SCOPE id with --scope $SCOPE; found '${SCOPE_ID}'"
            if [[ $SCOPE == folder ]]; then
                [[ $ORG_ID =~ ^[0-9]{1,20}$ ]] || usage_error "--scope folder needs --org-id (custom roles live in a project or an organization, never a folder); found '${ORG_ID}'"
            else
                ORG_ID=$SCOPE_ID
            fi
            ;;
        project)
            SCOPE_ID=${SCOPE_ID:-$PROJECT}
            [[ $SCOPE_ID =~ $project_re ]] || usage_error "expected --scope-id to be a project id with --scope project; found '$SCOPE_ID'"
            ;;
        *) usage_error "expected --scope to be org, folder or project; found '$SCOPE'" ;;
    esac

    case $TRIGGER in
        push | eventarc) ;;
        *) usage_error "expected --trigger to be push or eventarc; found '$TRIGGER'" ;;
    esac
    [[ $FUNCTIONS =~ ^[a-z_,]+$ ]] || usage_error "expected --functions to be rampart, all or rule ids separated by commas; found '$FUNCTIONS'"

    # The policy is deployed as a Secret Manager secret (rampart-policy), not with the code.
    [[ $POLICY =~ \.ya?ml$ && $POLICY != -* ]] || usage_error "expected --policy to be a .yaml file; found '$POLICY'"
    [[ -f $POLICY ]] || usage_error "policy file $POLICY not found"
    case $STAGE in
        "" | dry-run | alert | enforce) ;;
        *) usage_error "expected --stage to be dry-run, alert or enforce; found '$STAGE'" ;;
    esac
    rampart_validate_monitoring

    if ((CREATE_KMS_KEY)); then
        [[ -z $KMS_KEY ]] || usage_error "use --kms-key or --create-kms-key, not both"
        KMS_KEY="projects/$PROJECT/locations/$REGION/keyRings/$RAMPART_KEY_RING/cryptoKeys/$RAMPART_KEY"
    fi
    if [[ -n $KMS_KEY ]]; then
        local key_re='^projects/([a-z][a-z0-9-]{4,28}[a-z0-9])/locations/([a-z0-9-]+)/keyRings/([A-Za-z0-9_-]{1,63})/cryptoKeys/([A-Za-z0-9_-]{1,63})$'
        [[ $KMS_KEY =~ $key_re ]] || usage_error "expected --kms-key projects/P/locations/L/keyRings/R/cryptoKeys/K; found '$KMS_KEY'"
        KMS_PROJECT=${BASH_REMATCH[1]}
        KMS_LOCATION=${BASH_REMATCH[2]}
        KMS_RING=${BASH_REMATCH[3]}
        KMS_KEY_ID=${BASH_REMATCH[4]}
        [[ $KMS_LOCATION == "$REGION" ]] || die "the KMS key is in '$KMS_LOCATION' but Rampart deploys to '$REGION': a CMEK key ring must be in the same region as the data it protects"
    fi

    [[ -z $PROJECT_NUMBER || $PROJECT_NUMBER =~ ^[0-9]{1,20}$ ]] || usage_error "expected --project-number to be digits; found '$PROJECT_NUMBER'"
    rampart_int_between --min-instances "$MIN_INSTANCES" 0 100
    rampart_int_between --max-instances "$MAX_INSTANCES" 1 100
    ((10#$MIN_INSTANCES <= 10#$MAX_INSTANCES)) || usage_error "--min-instances ($MIN_INSTANCES) is above --max-instances ($MAX_INSTANCES)"
    rampart_int_between --timeout "$TIMEOUT" 10 600 # 600 s: the longest Pub/Sub push ack deadline
    rampart_int_between --concurrency "$CONCURRENCY" 1 1000
    [[ $MEMORY =~ ^[0-9]+(Mi|Gi)$ ]] || usage_error "expected --memory like 512Mi or 1Gi; found '$MEMORY'"
    [[ $CPU =~ ^(1|2|4|8)$ ]] || usage_error "expected --cpu to be 1, 2, 4 or 8; found '$CPU'"
    # Five cron fields (Cloud Scheduler's unix-cron): digits, * , - / only; no shell or quote characters.
    [[ $SWEEP_SCHEDULE =~ ^[0-9*,/-]+( [0-9*,/-]+){4}$ ]] || usage_error "expected --sweep-schedule to be a cron schedule like '0 6 * * *'; found '$SWEEP_SCHEDULE'"
    [[ -x $PYTHON ]] || die "expected a Python with Rampart's requirements at $PYTHON (set PYTHON=...); found none"

    rampart_is_local && ! rampart_is_dry && rampart_check_local
    return 0
}

# --alert-channel, --silence-alert-after, --failure-rate (Rampart's own monitoring, infra/monitoring.sh).
rampart_validate_monitoring() {
    if [[ $ALERT_CHANNEL =~ ^[0-9]{1,25}$ ]]; then
        ALERT_CHANNEL="projects/$PROJECT/notificationChannels/$ALERT_CHANNEL"
    fi
    [[ -z $ALERT_CHANNEL || $ALERT_CHANNEL =~ ^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/notificationChannels/[0-9]{1,25}$ ]] \
        || usage_error "expected --alert-channel to be projects/PROJECT/notificationChannels/ID (gcloud beta monitoring channels list); found '$ALERT_CHANNEL'"
    local amount unit
    if [[ $SILENCE_ALERT_AFTER =~ ^([0-9]{1,5})([mh])$ ]]; then
        amount=$((10#${BASH_REMATCH[1]}))
        unit=${BASH_REMATCH[2]}
        if [[ $unit == h ]]; then SILENCE_SECONDS=$((amount * 3600)); else SILENCE_SECONDS=$((amount * 60)); fi
    else
        SILENCE_SECONDS=0
    fi
    # Cloud Monitoring: a metric-absence condition's duration is at most 23.5 hours.
    ((SILENCE_SECONDS >= 300 && SILENCE_SECONDS <= 84600)) \
        || usage_error "expected --silence-alert-after to be minutes or hours from 5m to 23h (e.g. 30m, 6h); found '$SILENCE_ALERT_AFTER'"
    [[ $FAILURE_RATE =~ ^[0-9]{1,4}(\.[0-9]{1,3})?$ && ! $FAILURE_RATE =~ ^0+(\.0+)?$ ]] \
        || usage_error "expected --failure-rate to be a number of failures per minute above 0 (e.g. 0.5, 1, 10); found '$FAILURE_RATE'"
}

rampart_loopback() { [[ $1 =~ ^http://127\.0\.0\.1:[0-9]{1,5}/$ ]]; }

# Local mode talks to stand-ins on 127.0.0.1 only, with a throwaway gcloud configuration and
# no credentials; anything else is refused rather than risk touching a real project.
rampart_check_local() {
    [[ -n ${CLOUDSDK_CONFIG:-} && -d ${CLOUDSDK_CONFIG} ]] \
        || die "RAMPART_GCLOUD_LOCAL=1 needs CLOUDSDK_CONFIG set to a throwaway directory"
    [[ ${CLOUDSDK_AUTH_DISABLE_CREDENTIALS:-} == true ]] \
        || die "RAMPART_GCLOUD_LOCAL=1 needs CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true"
    rampart_loopback "${CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB:-}" \
        || die "RAMPART_GCLOUD_LOCAL=1 needs CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB=http://127.0.0.1:PORT/ (the Pub/Sub emulator); found '${CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB:-}'"
    if [[ -n $KMS_KEY ]]; then
        rampart_loopback "${CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS:-}" \
            || die "RAMPART_GCLOUD_LOCAL=1 with a KMS key needs CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS=http://127.0.0.1:PORT/ (the KMS stand-in); found '${CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS:-}'"
    fi
    export CLOUDSDK_CORE_CHECK_GCE_METADATA=false CLOUDSDK_CORE_DISABLE_USAGE_REPORTING=true \
        CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK=true
    # gcloud resolves metadata.google.internal once per configuration unless this cache says no.
    [[ -f $CLOUDSDK_CONFIG/gce ]] || printf 'False' >"$CLOUDSDK_CONFIG/gce"
}

rampart_confirm() {
    rampart_is_dry && return 0
    ((YES)) && return 0
    note ""
    note "About to deploy Rampart (${FUNCTION_NAMES[*]}) to project $PROJECT in $REGION, watching $SCOPE $SCOPE_ID, trigger $TRIGGER."
    RAMPART_STEP="confirm"
    local answer=""
    if ! { read -r -p "Continue? [y/N] " answer </dev/tty; } 2>/dev/null; then
        die "no terminal to ask on: pass --yes to deploy without confirmation (or --dry-run to see the commands)"
    fi
    [[ $answer == [yY] || $answer == [yY][eE][sS] ]] || die "stopped: nothing was changed"
}

# ---------------------------------------------------------------------------------------------
# what the policy asks for: generated by Rampart's own CLI, never written by hand

# Runs `python main.py rules --json`, `sink-filter [RULE...]` and `iam-role [RULE...]` through
# the CLI's entry point (shared.cli.main, exactly what `python main.py` runs) in one process,
# so a deploy of every rule costs one interpreter start, not thirty. Writes into $WORK:
#   facts                  key=value lines read below
#   FUNCTION.filter        the sink's Logging filter
#   FUNCTION.role.yaml     the custom role (gcloud iam roles create/update --file)
#   FUNCTION.permissions   the role's permissions, one a line
rampart_generate() {
    mkdir -p "$WORK"
    "$PYTHON" - "$POLICY" "$WORK" "$FUNCTIONS" "$PROJECT" "$STAGE" <<'PY' || die "could not generate the deployment from $POLICY (see above)"
import hashlib
import io
import json
import os
import sys
from pathlib import Path

import yaml

sys.path.insert(0, os.getcwd())
from shared.cli import main as cli  # what `python main.py` runs
from shared.config import load_policy

policy, work, which, project, stage = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

# The policy as deployed (pushed to the policy secret): the operator's file byte for byte, or,
# with --stage, the same policy with every rule's mode capped at the stage.
deployed = work / "policy.deployed.yaml"
source_text = Path(policy).read_text(encoding="utf-8")
if stage and stage != "enforce":  # enforce caps nothing
    order = ["off", "dry-run", "alert", "enforce"]
    original = load_policy(policy)
    data = yaml.safe_load(source_text) or {}
    data.setdefault("rules", {})
    for rid, s in original.rules.items():
        mode = s.mode.value
        if order.index(mode) > order.index(stage):
            rule_cfg = data["rules"].get(rid) or {}
            rule_cfg["mode"] = stage
            data["rules"][rid] = rule_cfg
    header = f"# Generated by deploy.sh --stage {stage} from {policy}: every rule's mode capped at {stage}.\n"
    deployed.write_text(header + yaml.safe_dump(data, sort_keys=False, width=200))
else:
    deployed.write_text(source_text)
policy = str(deployed)


def run(*argv: str) -> str:
    out = io.StringIO()
    rc = cli([*argv, "--policy", policy], out=out)
    if rc != 0:
        sys.exit(f"`python main.py {' '.join(argv)} --policy {policy}` exited {rc}")
    return out.getvalue()


rules = json.loads(run("rules", "--json"))
known = [r["id"] for r in rules]
enabled = [r["id"] for r in rules if r["mode"] != "off"]
if not enabled:
    sys.exit(f"{policy}: every rule is off: there is nothing to deploy")
identities = {}  # function -> its part when detection is split from action (shared/split.py)
if which == "rampart":
    functions = {"rampart": []}
elif which == "split":
    functions = {"rampart": [], "rampart_act_run": [], "rampart_act_kms": []}
    identities = {"rampart": "detect", "rampart_act_run": "act-run", "rampart_act_kms": "act-kms"}
elif which == "all":
    functions = {rid: [rid] for rid in enabled}
else:
    functions = {}
    for rid in which.split(","):
        if rid not in known:
            sys.exit(f"--functions: unknown rule {rid!r}; expected rampart, all, or rule ids from: {', '.join(known)}")
        if rid not in enabled:
            sys.exit(f"--functions: rule {rid!r} is off in {policy}: turn it on or leave it out")
        functions[rid] = [rid]

facts = []


def names(fn: str) -> tuple[str, str, str]:
    """The service, service account id and custom role id of function `fn`."""
    dashed = fn.replace("_", "-")
    service = "rampart" if fn == "rampart" else f"rampart-{dashed}"
    # Service account ids are 6-30 characters; long rule ids keep a readable prefix and a hash.
    sa = "rampart-runtime" if fn == "rampart" else f"rampart-{dashed}"
    if len(sa) > 30:
        sa = f"rampart-{dashed[:17].rstrip('-')}-{hashlib.sha256(fn.encode()).hexdigest()[:4]}"
    return service, sa, ("rampart" if fn == "rampart" else f"rampart_{fn}")


def split_names(identity: str) -> tuple[str, str, str]:
    """The service, service account id and role id of a --functions split part."""
    if identity == "detect":
        return "rampart", "rampart-detect", "rampart_detect"
    return f"rampart-{identity}", f"rampart-{identity}", f"rampart_{identity.replace('-', '_')}"


# Every function any layout could have: what rampart_prune may remove when a layout drops it.
parts = ("detect", "act-run", "act-kms")
facts.append("layout_sas=" + " ".join(
    [f"{names(fn)[1]}@{project}.iam.gserviceaccount.com" for fn in ["rampart", *known]]
    + [f"{split_names(i)[1]}@{project}.iam.gserviceaccount.com" for i in parts]))
facts.append("layout_roles=" + " ".join([names(fn)[2] for fn in ["rampart", *known]]
                                         + [split_names(i)[2] for i in parts] + ["rampart_logs_reader"]))
for fn, ids in functions.items():
    identity = identities.get(fn, "")
    service, sa, role_id = split_names(identity) if identity else names(fn)
    split_args = ("--identity", identity) if identity else ()
    # Writers get no sink: they act on the detector's requests, never on what a sink delivers.
    filter_text = "" if identity.startswith("act") else run("sink-filter", *ids).rstrip("\n")
    (work / f"{fn}.filter").write_text(filter_text)
    (work / f"{fn}.condition").write_text(run("iam-role", *split_args, "--format", "condition").strip() if identity else "")
    role_yaml = run("iam-role", *ids, *split_args, "--format", "yaml")
    perms = run("iam-role", *ids, *split_args, "--format", "list").split()
    role = yaml.safe_load(role_yaml)
    if len(role["description"].encode()) > 256:
        # IAM caps a role description at 256 bytes; the permissions are what matter.
        role["description"] = f"Exactly what Rampart's enabled rules need ({len(ids) or len(enabled)} rules; python main.py rules)"
        role_yaml = yaml.safe_dump(role, sort_keys=False, width=200)
    (work / f"{fn}.role.yaml").write_text(role_yaml)
    (work / f"{fn}.permissions").write_text("".join(p + "\n" for p in perms))
    target = "rampart_act" if identity.startswith("act") else fn
    facts.append(f"function={fn}|{service}|{sa}|{role_id}|{len(perms)}|{' '.join(ids)}|{target}|{identity}")

loaded = load_policy(policy)
alerts = loaded.alerts
enforce, report, off = [], [], []
for rid, s in loaded.rules.items():
    if s.mode.value == "off":
        off.append(rid)
    elif s.mode.value == "enforce" and s.action.value != "alert":
        enforce.append(f"{rid} ({s.action.value})")
    else:
        report.append(f"{rid} ({s.mode.value if s.mode.value != 'enforce' else 'alert only'})")
facts.append(f"rollout_enforce={', '.join(enforce)}")
facts.append(f"rollout_report={', '.join(report)}")
facts.append(f"rollout_off={', '.join(off)}")
channels = []
if alerts is not None and alerts.slack is not None:
    channels.append("Slack (webhook in " + alerts.slack.webhook_url_file + ")")
if alerts is not None and alerts.email is not None:
    channels.append("e-mail to " + ", ".join(alerts.email.recipients))
if alerts is not None and alerts.pubsub is not None:
    channels.append("Pub/Sub " + alerts.pubsub.topic)
facts.append(f"alert_channels={'; '.join(channels)}")
if channels:
    routes = alerts.routes
    facts.append("alert_routes=" + "; ".join(
        f"{sev}: {', '.join(routes.get(sev, ())) or 'nowhere'}" for sev in ("critical", "high", "medium", "low")
    ))
secrets = []
if alerts is not None and alerts.slack is not None:
    secrets.append(("slack", alerts.slack.webhook_url_file))
if alerts is not None and alerts.email is not None and alerts.email.password_file:
    secrets.append(("smtp", alerts.email.password_file))
dirs = {}
for kind, path in secrets:
    p = Path(path)
    if not p.is_absolute() or p.name in ("", ".", "..") or ".." in p.parts:
        sys.exit(f"{policy}: expected the {kind} secret file to be an absolute path like /secrets/{kind}/value; found {path!r}")
    top = p.parts[1] if len(p.parts) > 1 else ""
    if str(p.parent) == "/" or top in ("dev", "proc", "sys", "workspace", "tmp"):
        sys.exit(f"{policy}: the {kind} secret file {path!r} must be in its own directory outside /, /dev, /proc, /sys, /tmp and /workspace (Cloud Run mounts a secret as a directory)")
    if str(p.parent) in dirs:
        sys.exit(
            f"{policy}: the {dirs[str(p.parent)]} and {kind} secret files are both in {p.parent}: Cloud Run mounts one "
            f"secret per directory, so give each its own (e.g. /secrets/slack/webhook-url and /secrets/smtp/password)"
        )
    dirs[str(p.parent)] = kind
    facts.append(f"secret_{kind}={path}")
if alerts is not None and alerts.pubsub is not None:
    facts.append(f"alerts_topic={alerts.pubsub.topic}")
if alerts is not None and alerts.dedupe.store == "firestore":
    d = alerts.dedupe
    facts.append(f"dedupe=firestore|{d.project or project}|{d.database}|{d.collection}")

(work / "facts").write_text("".join(f + "\n" for f in facts))
PY
    FUNCTION_NAMES=()
    FUNCTION_SERVICES=()
    FUNCTION_SAS=()
    FUNCTION_ROLES=()
    FUNCTION_PERMS=()
    FUNCTION_RULES=()
    FUNCTION_TARGETS=()
    FUNCTION_IDENTITIES=()
    SECRET_MOUNTS=()
    ALERTS_TOPIC_PATH=""
    DEDUPE_PROJECT=""
    DEDUPE_DATABASE=""
    DEDUPE_COLLECTION=""
    ROLLOUT_ENFORCE=""
    ROLLOUT_REPORT=""
    ROLLOUT_OFF=""
    ALERT_CHANNELS=""
    ALERT_ROUTES=""
    LAYOUT_SAS=" "
    LAYOUT_ROLES=" "
    DEPLOYED_POLICY="$WORK/policy.deployed.yaml"
    local key value fn svc sa role nperm rules target identity
    while IFS='=' read -r key value; do
        case $key in
            function)
                IFS='|' read -r fn svc sa role nperm rules target identity <<<"$value"
                FUNCTION_TARGETS+=("$target")
                FUNCTION_IDENTITIES+=("$identity")
                FUNCTION_NAMES+=("$fn")
                FUNCTION_SERVICES+=("$svc")
                FUNCTION_SAS+=("$sa@$PROJECT.iam.gserviceaccount.com")
                FUNCTION_ROLES+=("$role")
                FUNCTION_PERMS+=("$nperm")
                FUNCTION_RULES+=("$rules")
                ;;
            secret_slack) SECRET_MOUNTS+=("$value=$RAMPART_SECRET_SLACK") ;;
            secret_smtp) SECRET_MOUNTS+=("$value=$RAMPART_SECRET_SMTP") ;;
            alerts_topic) ALERTS_TOPIC_PATH=$value ;;
            dedupe) IFS='|' read -r _ DEDUPE_PROJECT DEDUPE_DATABASE DEDUPE_COLLECTION <<<"$value" ;;
            warning) note "warning: $value" ;;
            rollout_enforce) ROLLOUT_ENFORCE=$value ;;
            rollout_report) ROLLOUT_REPORT=$value ;;
            rollout_off) ROLLOUT_OFF=$value ;;
            alert_channels) ALERT_CHANNELS=$value ;;
            alert_routes) ALERT_ROUTES=$value ;;
            layout_sas) LAYOUT_SAS=" $value " ;;
            layout_roles) LAYOUT_ROLES=" $value " ;;
            *) die "unexpected line in $WORK/facts: $key" ;;
        esac
    done <"$WORK/facts"
    ((${#FUNCTION_NAMES[@]})) || die "no function to deploy"
    INVOKER_EMAIL="$RAMPART_INVOKER_SA@$PROJECT.iam.gserviceaccount.com"
    BUILD_EMAIL="$RAMPART_BUILD_SA@$PROJECT.iam.gserviceaccount.com"
}

rampart_audit_topic() {
    case $1 in
        rampart) echo rampart-audit ;;
        rampart_act_*) echo "$RAMPART_ACTIONS_TOPIC" ;; # a writer's requests come from the detector
        *) echo "rampart-audit-${1//_/-}" ;;
    esac
}

rampart_sink_name() {
    if [[ $1 == rampart ]]; then echo rampart-audit; else echo "rampart-audit-${1//_/-}"; fi
}

# The custom role's location: the watched project, or the organization (for org and folder).
rampart_role_parent() {
    if [[ $SCOPE == project ]]; then
        echo "--project=$SCOPE_ID"
    else
        echo "--organization=$ORG_ID"
    fi
}

rampart_role_name() {
    if [[ $SCOPE == project ]]; then
        echo "projects/$SCOPE_ID/roles/$1"
    else
        echo "organizations/$ORG_ID/roles/$1"
    fi
}

# `gcloud projects|organizations|resource-manager folders add-iam-policy-binding ID` for the scope;
# RAMPART_BINDING_CONDITION (a CEL expression) narrows the binding, else it has none.
rampart_scope_binding() {
    local cond=--condition=None
    if [[ -n ${RAMPART_BINDING_CONDITION:-} ]]; then
        cond="--condition=^;^expression=$RAMPART_BINDING_CONDITION;title=rampart-kms-resources-only;description=Rampart KMS writer: KMS key rings, keys and versions only"
    fi
    case $SCOPE in
        project) gc_bind projects add-iam-policy-binding "$SCOPE_ID" "$@" "$cond" ;;
        org) gc_bind organizations add-iam-policy-binding "$SCOPE_ID" "$@" "$cond" ;;
        folder) gc_bind resource-manager folders add-iam-policy-binding "$SCOPE_ID" "$@" "$cond" ;;
    esac
}

# The project's subscriptions as "name<TAB>topic<TAB>expiration ttl" lines, listed once per run
# (bootstrap only adds the dead-letter hold, which triggers.sh never looks for).
rampart_subscriptions() {
    if [[ -z ${RAMPART_SUBSCRIPTIONS+listed} ]]; then
        RAMPART_SUBSCRIPTIONS=$(gc_value "" pubsub subscriptions list --project="$PROJECT" \
            --format='value(name,topic,expirationPolicy.ttl)')
    fi
}

# Create the topics named that do not exist yet, as every Rampart topic is made: messages (audit
# entries, alerts, requests) stored only in the approved region, under the CMEK key when one is set.
rampart_ensure_topics() {
    local existing missing=() t
    existing=$(gc_value "" pubsub topics list --project="$PROJECT" --format='value(name)')
    for t in "$@"; do
        if grep -qxF "projects/$PROJECT/topics/$t" <<<"$existing"; then
            note "topic $t exists"
        else
            missing+=("$t")
        fi
    done
    if ((${#missing[@]})); then
        local cmek=()
        if [[ -n $KMS_KEY ]]; then cmek=(--topic-encryption-key="$KMS_KEY"); fi
        gc pubsub topics create "${missing[@]}" --project="$PROJECT" \
            --message-storage-policy-allowed-regions="$REGION" "${cmek[@]}" --labels=app=rampart
    fi
}

# A dead-letter topic without a subscription drops what it receives: hold its messages for a week.
rampart_ensure_hold() {
    local sub=$1 topic=$2
    rampart_subscriptions
    if awk -F'\t' -v want="projects/$PROJECT/subscriptions/$sub" \
        '$1 == want {found = 1} END {exit !found}' <<<"$RAMPART_SUBSCRIPTIONS"; then
        note "subscription $sub exists"
    else
        gc pubsub subscriptions create "$sub" --topic="$topic" \
            --project="$PROJECT" --message-retention-duration=7d --expiration-period=never \
            --ack-deadline=60 --labels=app=rampart
    fi
}

rampart_project_number() {
    if [[ -z $PROJECT_NUMBER ]]; then
        PROJECT_NUMBER=$(gc_value PROJECT_NUMBER projects describe "$PROJECT" --format='value(projectNumber)')
    fi
    PUBSUB_AGENT="service-$PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# Whatever script is run first: strict mode, options, checks, generated files.
rampart_init() {
    RAMPART_PROG=$1
    shift
    rampart_strict
    rampart_defaults
    rampart_parse_args "$@"
    rampart_validate
    step "generate the sink filter and IAM roles from $POLICY (python main.py sink-filter / iam-role)"
    rampart_generate
    note "functions: ${FUNCTION_NAMES[*]}; generated files in $WORK/"
}
