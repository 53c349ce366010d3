# shellcheck shell=bash disable=SC2034
# (SC2034: RAMPART_STEP and RAMPART_LAST_CMD are read by lib.sh's error trap.)
# Rampart watches itself (sourced by deploy.sh): Cloud Monitoring log-based metrics on Rampart's
# own log lines, and alert policies that page the operator's notification channel (--alert-channel)
# when
#   - a dead letter waits in rampart-dead-letter-hold (an event Rampart gave up on);
#   - a function finds the policy invalid (rampart.policy_invalid: refusing to act) or rejects a
#     new one (rampart.policy_rejected: the last good one stays);
#   - rampart.event_failed (an event returned an error for redelivery) exceeds --failure-rate a minute;
#   - no audit entry is published to Rampart's topics for --silence-alert-after: a broken sink.
# Alert policies need `gcloud alpha` (no beta or GA track has `monitoring policies`).

RAMPART_METRIC_POLICY=rampart-policy-invalid
RAMPART_METRIC_FAILED=rampart-event-failed
RAMPART_MONITORING_POLICIES=("Rampart: dead letters waiting" "Rampart: policy invalid or rejected"
    "Rampart: events failing" "Rampart: no audit entry received")

rampart_monitoring() {
    step "Rampart watches itself: log-based metrics and alert policies${ALERT_CHANNEL:+ to $ALERT_CHANNEL}"
    local run_logs='resource.type="cloud_run_revision" AND resource.labels.service_name=~"^rampart"'
    rampart_log_metric "$RAMPART_METRIC_POLICY" \
        "Rampart: a function found its policy invalid (refuses to act) or rejected a new one (kept the last good)" \
        "$run_logs AND jsonPayload.message=(\"rampart.policy_invalid\" OR \"rampart.policy_rejected\")"
    rampart_log_metric "$RAMPART_METRIC_FAILED" \
        "Rampart: an event returned an error so that Pub/Sub redelivers it" \
        "$run_logs AND jsonPayload.message=\"rampart.event_failed\""
    "$PYTHON" - "$WORK" "$PROJECT" "$ALERT_CHANNEL" "$SILENCE_SECONDS" "$FAILURE_RATE" "$RAMPART_DEAD_LETTER_HOLD" \
        "$RAMPART_METRIC_POLICY" "$RAMPART_METRIC_FAILED" <<'PY' || die "could not write the alert policies"
import json
import sys
from pathlib import Path

work, project, channel, silence, rate, hold, m_policy, m_failed = sys.argv[1:9]
work = Path(work)


def policy(name: str, condition: dict, doc: str) -> dict:
    return {
        "displayName": f"Rampart: {name}",
        "combiner": "OR",
        "conditions": [condition],
        "notificationChannels": [channel] if channel else [],
        "documentation": {"content": doc, "mimeType": "text/markdown"},
        "userLabels": {"app": "rampart"},
        "enabled": True,
    }


def above(name: str, filt: str, aligner: str, value: float, reducer: str = "REDUCE_SUM") -> dict:
    return {"displayName": name, "conditionThreshold": {
        "filter": filt, "comparison": "COMPARISON_GT", "thresholdValue": value, "duration": "0s",
        "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": aligner, "crossSeriesReducer": reducer}],
        "trigger": {"count": 1}}}


logs = f"logging.googleapis.com/user/"
policies = {
    "dead-letters": policy("dead letters waiting", above(
        "undelivered messages in the dead-letter hold > 0",
        f'resource.type="pubsub_subscription" AND resource.labels.subscription_id="{hold}" '
        'AND metric.type="pubsub.googleapis.com/subscription/num_undelivered_messages"', "ALIGN_MAX", 0),
        f"An audit entry failed delivery to Rampart 5 times and waits in `{hold}` (kept 7 days): its violation "
        f"may be open. Read them: `gcloud pubsub subscriptions pull {hold} --project={project} --limit=10`; "
        "fix the cause (the function's logs say it), then republish them to the audit topic."),
    "policy-invalid": policy("policy invalid or rejected", above(
        "rampart.policy_invalid or rampart.policy_rejected logged",
        f'resource.type="cloud_run_revision" AND metric.type="{logs}{m_policy}"', "ALIGN_SUM", 0),
        "A function could not use the policy: with none ever loaded it refuses to act (events wait in Pub/Sub); "
        "with an earlier one it keeps that one. The log line's `reason` names the file, key and value. Fix it, "
        "check it with `python main.py check-config FILE`, then `python main.py policy push FILE`."),
    "events-failing": policy("events failing", above(
        f"rampart.event_failed above {rate} a minute over 5 minutes",
        f'resource.type="cloud_run_revision" AND metric.type="{logs}{m_failed}"', "ALIGN_RATE", float(rate) / 60),
        "Rampart is returning errors for events (Pub/Sub redelivers them, then dead-letters them): a Google API "
        "outage, a missing permission, or a bug. The `rampart.event_failed` log lines say which."),
    "silence": policy("no audit entry received", {"displayName": f"no publish to rampart-audit topics for {silence}s",
        "conditionAbsent": {
            "filter": 'resource.type="pubsub_topic" AND resource.labels.topic_id=starts_with("rampart-audit") '
                      'AND metric.type="pubsub.googleapis.com/topic/send_request_count"',
            "duration": f"{silence}s",
            "aggregations": [{"alignmentPeriod": "300s", "perSeriesAligner": "ALIGN_SUM",
                              "crossSeriesReducer": "REDUCE_SUM"}],
            "trigger": {"count": 1}}},
        "No audit entry reached Rampart's topics: the log sink may be broken or deleted, its writer identity may "
        "have lost `pubsub.publisher`, or the topic was deleted. Nothing is being watched. Check "
        f"`gcloud logging sinks list` at the watched scope, then re-run deploy.sh. (Quiet organizations: raise "
        "--silence-alert-after.)"),
}
for key, body in policies.items():
    (work / f"alert-policy-{key}.json").write_text(json.dumps(body, indent=2) + "\n")
PY
    local key name i=0
    for key in dead-letters policy-invalid events-failing silence; do
        name=${RAMPART_MONITORING_POLICIES[i]}
        i=$((i + 1))
        local existing
        existing=$(gc_value "" alpha monitoring policies list --project="$PROJECT" \
            --filter="displayName=\"$name\"" --format='value(name)')
        existing=${existing%%$'\n'*}
        if [[ -n $existing ]]; then
            gc alpha monitoring policies update "$existing" --policy-from-file="$WORK/alert-policy-$key.json" --project="$PROJECT"
        else
            gc alpha monitoring policies create --policy-from-file="$WORK/alert-policy-$key.json" --project="$PROJECT"
        fi
    done
    if [[ -z $ALERT_CHANNEL ]]; then
        note "warning: no --alert-channel: these policies open incidents in Cloud Monitoring but page nobody."
        note "  List channels: gcloud beta monitoring channels list --project=$PROJECT; then re-run with --alert-channel=projects/$PROJECT/notificationChannels/ID"
    fi
}

rampart_log_metric() {
    local name=$1 description=$2 filter=$3
    if gc_exists logging metrics describe "$name" --project="$PROJECT" --format='value(name)'; then
        gc logging metrics update "$name" --project="$PROJECT" --description="$description" --log-filter="$filter"
    else
        gc logging metrics create "$name" --project="$PROJECT" --description="$description" --log-filter="$filter"
    fi
}

# For deploy.sh --uninstall (infra/lifecycle.sh): the alert policies, then the metrics they read.
rampart_monitoring_remove() {
    local name existing i=0
    for name in "${RAMPART_MONITORING_POLICIES[@]}"; do
        i=$((i + 1))
        # The dry run shows a placeholder id where a real run finds the policy by its name.
        existing=$(gc_value "projects/$PROJECT/alertPolicies/ID_OF_RAMPART_POLICY_$i" alpha monitoring policies list --project="$PROJECT" \
            --filter="displayName=\"$name\"" --format='value(name)')
        for existing in $existing; do
            gc_delete "alert policy \"$name\"" alpha monitoring policies delete "$existing" --project="$PROJECT" --quiet
        done
    done
    for name in "$RAMPART_METRIC_POLICY" "$RAMPART_METRIC_FAILED"; do
        gc_delete "log-based metric $name" logging metrics delete "$name" --project="$PROJECT" --quiet
    done
}
