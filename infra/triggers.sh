#!/usr/bin/env bash
# Connect deployed functions to the audit stream, in the order that loses nothing: the
# invoker grant, then the delivery (a push subscription, or an Eventarc trigger), then the
# aggregated audit-log sink that feeds the topic. Idempotent: existing subscriptions,
# triggers and sinks are updated to the current settings and filter.
#
#   infra/triggers.sh --project P [--scope org --scope-id ORG] [--trigger eventarc] ...
# deploy.sh runs this after the functions deploy; run it alone to re-point triggers or sinks.

rampart_triggers() {
    local i fn svc topic url

    step "Pub/Sub service agent: publish dead letters, mint the invoker's OIDC tokens"
    rampart_project_number
    gc_bind pubsub topics add-iam-policy-binding "$RAMPART_DEAD_LETTER_TOPIC" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.publisher
    # Needed by projects created before 2021-04-08; granted on the invoker account only.
    gc_bind iam service-accounts add-iam-policy-binding "$INVOKER_EMAIL" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/iam.serviceAccountTokenCreator

    if [[ $TRIGGER == push ]]; then
        rampart_subscriptions
    fi
    for i in "${!FUNCTION_NAMES[@]}"; do
        fn=${FUNCTION_NAMES[i]}
        svc=${FUNCTION_SERVICES[i]}
        topic=$(rampart_audit_topic "$fn")
        step "$svc: invoker, $TRIGGER delivery from $topic, audit-log sink"
        url=$(rampart_service_url "$svc")
        gc_bind run services add-iam-policy-binding "$svc" --region="$REGION" --project="$PROJECT" \
            --member="serviceAccount:$INVOKER_EMAIL" --role=roles/run.invoker
        if [[ $TRIGGER == push ]]; then
            rampart_push_subscription "$fn" "$topic" "$url"
        else
            rampart_eventarc_trigger "$fn" "$svc" "$topic"
        fi
        rampart_sink "$fn" "$topic"
    done
    rampart_dead_letter_subscription
}

# The dead-letter topic's consumer (entry point rampart_dead_letter): every message Rampart never
# finished handling is recorded and alerted on, so nothing ends unseen. Its subscription has no
# dead-letter policy of its own (it would loop); Pub/Sub retries it with backoff for 7 days, and
# the hold subscription keeps a copy for a human either way.
rampart_dead_letter_subscription() {
    local svc=$RAMPART_DEAD_LETTER_SERVICE sub=$RAMPART_DEAD_LETTER_PUSH url push current
    step "$svc: invoker, push delivery from $RAMPART_DEAD_LETTER_TOPIC"
    url=$(rampart_service_url "$svc")
    gc_bind run services add-iam-policy-binding "$svc" --region="$REGION" --project="$PROJECT" \
        --member="serviceAccount:$INVOKER_EMAIL" --role=roles/run.invoker
    push=(--push-endpoint="$url/projects/$PROJECT/topics/$RAMPART_DEAD_LETTER_TOPIC" --push-auth-service-account="$INVOKER_EMAIL"
        --push-auth-token-audience="$url" --ack-deadline="$TIMEOUT" --min-retry-delay="$RAMPART_MIN_RETRY_DELAY"
        --max-retry-delay="$RAMPART_MAX_RETRY_DELAY" --project="$PROJECT")
    rampart_subscriptions
    current=$(awk -F'\t' -v want="projects/$PROJECT/subscriptions/$sub" '$1 == want {print $2}' <<<"$RAMPART_SUBSCRIPTIONS")
    if [[ -n $current ]]; then
        gc pubsub subscriptions update "$sub" "${push[@]}"
    else
        gc pubsub subscriptions create "$sub" --topic="$RAMPART_DEAD_LETTER_TOPIC" "${push[@]}" "$RAMPART_NEVER_EXPIRE" \
            --message-retention-duration=7d --labels=app=rampart
    fi
}

rampart_service_url() {
    local svc=$1
    if rampart_is_local && ! rampart_is_dry; then
        # No stand-in serves Cloud Run to gcloud: the test names a loopback receiver instead.
        local local_url=${RAMPART_LOCAL_SERVICE_URL:-}
        rampart_loopback "${local_url%/}/" || die "RAMPART_GCLOUD_LOCAL=1 needs RAMPART_LOCAL_SERVICE_URL=http://127.0.0.1:PORT (where pushes go); found '$local_url'"
        note "skipped (RAMPART_GCLOUD_LOCAL=1: no local stand-in for Cloud Run): the URL of $svc is $local_url"
        printf '%s\n' "${local_url%/}"
        return 0
    fi
    # The placeholder is Cloud Run's deterministic URL form.
    gc_value "https://$svc-$PROJECT_NUMBER.$REGION.run.app" run services describe "$svc" \
        --region="$REGION" --project="$PROJECT" --format='value(status.url)'
}

# Retries back off from 10 s to 10 min; after 5 failed deliveries a message goes to the
# dead-letter topic (held a week). The ack deadline equals the function's timeout, so Pub/Sub
# never redelivers an event the function is still handling.
rampart_delivery_flags() {
    printf '%s\n' --ack-deadline="$TIMEOUT" --min-retry-delay="$RAMPART_MIN_RETRY_DELAY" \
        --max-retry-delay="$RAMPART_MAX_RETRY_DELAY" \
        --dead-letter-topic="projects/$PROJECT/topics/$RAMPART_DEAD_LETTER_TOPIC" \
        --max-delivery-attempts="$RAMPART_MAX_DELIVERY_ATTEMPTS"
}

# Subscriptions must never expire: by default Pub/Sub deletes one after 31 days without
# activity, and the audit events Rampart waits for can be that rare.
RAMPART_NEVER_EXPIRE=--expiration-period=never

rampart_push_subscription() {
    local fn=$1 topic=$2 url=$3
    local sub="rampart-push-${fn//_/-}"
    local delivery
    mapfile -t delivery < <(rampart_delivery_flags)
    # The topic in the path lets the Functions Framework name the CloudEvent's source; the OIDC
    # audience is the service URL, which Cloud Run checks.
    local push=(--push-endpoint="$url/projects/$PROJECT/topics/$topic" --push-auth-service-account="$INVOKER_EMAIL"
        --push-auth-token-audience="$url" "${delivery[@]}" --project="$PROJECT")
    local current_topic ttl expiry=()
    current_topic=$(awk -F'\t' -v want="projects/$PROJECT/subscriptions/$sub" '$1 == want {print $2}' <<<"$RAMPART_SUBSCRIPTIONS")
    ttl=$(awk -F'\t' -v want="projects/$PROJECT/subscriptions/$sub" '$1 == want {print $3}' <<<"$RAMPART_SUBSCRIPTIONS")
    if [[ -n $current_topic ]]; then
        [[ $current_topic == "projects/$PROJECT/topics/$topic" ]] \
            || die "subscription $sub exists on $current_topic, not $topic: delete it (gcloud pubsub subscriptions delete $sub --project=$PROJECT) and re-run"
        # Only when it could still expire (an empty ttl already means never).
        if [[ -n $ttl ]]; then expiry=("$RAMPART_NEVER_EXPIRE"); fi
        gc pubsub subscriptions update "$sub" "${push[@]}" "${expiry[@]}"
    else
        gc pubsub subscriptions create "$sub" --topic="$topic" "${push[@]}" "$RAMPART_NEVER_EXPIRE" \
            --message-retention-duration=7d --labels=app=rampart
    fi
    # Dead-lettering needs the service agent to subscribe (acknowledge what it forwards).
    gc_bind pubsub subscriptions add-iam-policy-binding "$sub" --project="$PROJECT" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber
}

# Eventarc over the same sink topic (type messagePublished), so one generated filter feeds both
# kinds of trigger and org/folder sinks work (audit-log Eventarc triggers are per project).
rampart_eventarc_trigger() {
    local fn=$1 svc=$2 topic=$3
    local name="rampart-${fn//_/-}"
    local where=(--location="$REGION" --project="$PROJECT")
    if gc_exists eventarc triggers describe "$name" "${where[@]}" --format='value(name)'; then
        gc eventarc triggers update "$name" "${where[@]}" --destination-run-service="$svc" \
            --destination-run-region="$REGION" --service-account="$INVOKER_EMAIL"
    else
        gc eventarc triggers create "$name" "${where[@]}" --destination-run-service="$svc" \
            --destination-run-region="$REGION" \
            --event-filters=type=google.cloud.pubsub.topic.v1.messagePublished \
            --transport-topic="projects/$PROJECT/topics/$topic" --service-account="$INVOKER_EMAIL"
    fi
    # Eventarc's own subscription gets the same retry, dead-letter and expiry settings.
    local sub delivery
    sub=$(gc_value "projects/$PROJECT/subscriptions/EVENTARC_SUBSCRIPTION_OF_$name" eventarc triggers describe \
        "$name" "${where[@]}" --format='value(transport.pubsub.subscription)')
    mapfile -t delivery < <(rampart_delivery_flags)
    gc pubsub subscriptions update "$sub" "${delivery[@]}" "$RAMPART_NEVER_EXPIRE"
    gc_bind pubsub subscriptions add-iam-policy-binding "$sub" \
        --member="serviceAccount:$PUBSUB_AGENT" --role=roles/pubsub.subscriber
}

# The aggregated sink: Admin Activity entries matching `python main.py sink-filter`, from the
# whole organization or folder (--include-children) or one project, to the function's topic.
rampart_sink() {
    local fn=$1 topic=$2
    local sink filter destination where
    sink=$(rampart_sink_name "$fn")
    filter=$(<"$WORK/$fn.filter")
    destination="pubsub.googleapis.com/projects/$PROJECT/topics/$topic"
    case $SCOPE in
        org) where=(--organization="$SCOPE_ID" --include-children) ;;
        folder) where=(--folder="$SCOPE_ID" --include-children) ;;
        project) where=(--project="$SCOPE_ID") ;;
    esac
    local locate=("${where[@]}")
    # --include-children is a create/update flag, not a describe flag.
    if [[ $SCOPE != project ]]; then locate=("${where[0]}"); fi
    if gc_exists logging sinks describe "$sink" "${locate[@]}" --format='value(name)'; then
        gc logging sinks update "$sink" "$destination" "${where[@]}" --log-filter="$filter" \
            --description="Rampart: audit entries for $fn (python main.py sink-filter)"
    else
        gc logging sinks create "$sink" "$destination" "${where[@]}" --log-filter="$filter" \
            --description="Rampart: audit entries for $fn (python main.py sink-filter)"
    fi
    local writer
    writer=$(gc_value "serviceAccount:WRITER_IDENTITY_OF_$sink" logging sinks describe "$sink" "${locate[@]}" \
        --format='value(writerIdentity)')
    # The sink may publish to its topic and nothing else.
    gc_bind pubsub topics add-iam-policy-binding "$topic" --project="$PROJECT" \
        --member="$writer" --role=roles/pubsub.publisher
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
    # deploy.sh lints lib.sh with this file; following it from here as well triples the lint time.
    # shellcheck source=/dev/null
    source infra/lib.sh
    rampart_init "infra/triggers.sh" "$@"
    rampart_confirm
    rampart_triggers
    note ""
    note "triggers done."
fi
