# shellcheck shell=bash disable=SC2034
# (SC2034: the globals set here are read by infra/lifecycle.sh and lib.sh's error trap.)
# The policy in force and a safe rollout, sourced by deploy.sh:
#   rampart_rollout_summary   before anything changes: which rules act, which only report, where
#                             alerts go; refuses rules that enforce with nowhere to alert
#   rampart_policy_secret     the policy as secret rampart-policy (version latest), which every
#                             function mounts as a file and re-reads: a new version is in force
#                             within seconds, with no redeploy (python main.py policy push FILE)
#
# Why a mounted secret: Cloud Run fetches a volume-mounted secret from Secret Manager each time
# the file is read, so `latest` follows new versions; an environment variable would be resolved
# once, at instance start (https://cloud.google.com/run/docs/configuring/services/secrets).

rampart_rollout_summary() {
    step "what this deploy puts in force (policy $POLICY${STAGE:+, capped at --stage $STAGE})"
    note "  act (enforce):        ${ROLLOUT_ENFORCE:-none}"
    note "  only report:          ${ROLLOUT_REPORT:-none}"
    note "  off:                  ${ROLLOUT_OFF:-none}"
    if [[ -n $ALERT_CHANNELS ]]; then
        note "  alerts go to:         $ALERT_CHANNELS"
        note "  routed by severity:   $ALERT_ROUTES"
    else
        note "  alerts go to:         nowhere: the policy has no alert channel (records go to Cloud Logging only)"
    fi
    if [[ -n $ALERT_CHANNEL ]]; then
        note "  Rampart's own health: Cloud Monitoring notification channel $ALERT_CHANNEL"
    else
        note "  Rampart's own health: alert policies with no notification channel (pass --alert-channel to be paged)"
    fi
    if [[ -n $ROLLOUT_ENFORCE && -z $ALERT_CHANNELS ]] && ((!NO_ALERTS)); then
        RAMPART_STEP="rollout check"
        local n
        n=$(tr ',' '\n' <<<"$ROLLOUT_ENFORCE" | grep -c .)
        die "$n rules would change resources (listed above) while nobody is told: add an alert channel to the policy (README \"Alerts\"), deploy with --stage dry-run or --stage alert first, or pass --no-alerts to accept it"
    fi
}

rampart_policy_secret() {
    step "the policy: secret $RAMPART_SECRET_POLICY (mounted by every function at $RAMPART_POLICY_MOUNT; re-read within seconds of a change)"
    local replication=(--replication-policy=user-managed --locations="$REGION")
    if [[ -n $KMS_KEY ]]; then
        printf '{"userManaged": {"replicas": [{"location": "%s", "customerManagedEncryption": {"kmsKeyName": "%s"}}]}}\n' \
            "$REGION" "$KMS_KEY" >"$WORK/policy-secret-replication.json"
        replication=(--replication-policy-file="$WORK/policy-secret-replication.json")
    fi
    if ! gc_exists secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(name)'; then
        gc secrets create "$RAMPART_SECRET_POLICY" --project="$PROJECT" "${replication[@]}" --labels=app=rampart
    fi
    # Where the last deploy watched (sinks, bindings) and kept its roles, for rampart_prune.
    PREVIOUS_SCOPE=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-scope)')
    PREVIOUS_TRIGGER=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-trigger)')
    PREVIOUS_ROLES=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-roles)')
    local sa
    for sa in "${FUNCTION_SAS[@]}"; do
        gc_bind secrets add-iam-policy-binding "$RAMPART_SECRET_POLICY" --project="$PROJECT" \
            --member="serviceAccount:$sa" --role=roles/secretmanager.secretAccessor
    done
    # Validated above (rampart_generate); the same bytes `python main.py policy push` would send.
    gc secrets versions add "$RAMPART_SECRET_POLICY" --project="$PROJECT" --data-file="$DEPLOYED_POLICY"
}

# The label values for where the scope and the roles are: org-N, folder-N, project-ID.
rampart_scope_label() { printf '%s-%s' "$SCOPE" "$SCOPE_ID"; }
rampart_roles_label() {
    if [[ $SCOPE == project ]]; then printf 'project-%s' "$SCOPE_ID"; else printf 'org-%s' "$ORG_ID"; fi
}

# Remember this layout's scope on the policy secret, once everything else converged.
rampart_record_layout() {
    gc secrets update "$RAMPART_SECRET_POLICY" --project="$PROJECT" \
        --update-labels="rampart-scope=$(rampart_scope_label),rampart-roles=$(rampart_roles_label),rampart-trigger=$TRIGGER"
}
