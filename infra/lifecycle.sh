# shellcheck shell=bash disable=SC2086,SC2034,SC2153
# (SC2086: the name lists below are split on purpose; resource names hold no spaces or globs.)
# Rampart's lifecycle beyond the first deploy, sourced by deploy.sh:
#   rampart_prune       after a deploy: remove what the new layout (--functions, --scope) no
#                       longer uses: old sinks first, then deliveries, services, topics, grants,
#                       roles and service accounts
#   rampart_uninstall   deploy.sh --uninstall: remove everything Rampart created, sinks first so
#                       no audit entry is routed to a deleted topic
# Both find what exists by Rampart's names (rampart-*) and label (app=rampart), and print what
# they removed. A resource already gone counts as removed, so both are safe to re-run.

RAMPART_REMOVED=()

# A deletion. NOT_FOUND counts as done (a re-run, or removed by hand); any other error stops.
gc_delete() {
    local what=$1
    shift
    if rampart_is_dry; then
        show_cmd gcloud "$@" >&3
        RAMPART_REMOVED+=("$what")
        return 0
    fi
    rampart_skipped "$@" && return 0
    local err
    show_cmd gcloud "$@" >&2
    printf -v RAMPART_LAST_CMD '%q ' gcloud "$@"
    if err=$(gcloud "$@" 2>&1 >/dev/null); then
        RAMPART_REMOVED+=("$what")
        return 0
    fi
    if grep -qiE "NOT_FOUND|not found|does not exist|was not found|already deleted|has been deleted" <<<"$err"; then
        RAMPART_REMOVED+=("$what (already gone)")
        return 0
    fi
    printf '%s\n' "$err" >&2
    die "could not remove $what: $(show_cmd gcloud "$@")"
}

rampart_report_removed() {
    local verb=Removed
    if rampart_is_dry; then verb="Would remove"; fi
    note ""
    if ((${#RAMPART_REMOVED[@]} == 0)); then
        note "$verb nothing: no resource of an earlier layout was found."
        return 0
    fi
    note "$verb ${#RAMPART_REMOVED[@]}:"
    local item
    for item in "${RAMPART_REMOVED[@]}"; do
        note "  - $item"
    done
}

# Where-flags for a scope label written by rampart_record_layout (org-N, folder-N, project-ID).
rampart_scope_flag() {
    case $1 in
        org-*) echo "--organization=${1#org-}" ;;
        folder-*) echo "--folder=${1#folder-}" ;;
        project-*) echo "--project=${1#project-}" ;;
    esac
}

# `gcloud projects|organizations|resource-manager folders` for a scope label.
rampart_scope_group() {
    case $1 in
        org-*) echo "organizations ${1#org-}" ;;
        folder-*) echo "resource-manager folders ${1#folder-}" ;;
        project-*) echo "projects ${1#project-}" ;;
    esac
}

# The distinct words of "$@", sorted, one a line (names never contain spaces).
rampart_unique() { printf '%s\n' "$@" | awk 'NF && !seen[$0]++' | sort; }

# Remove every binding of a Rampart custom role at a scope, then the roles themselves.
# $1 scope label (where the bindings are), $2 roles label (where the roles live), $3 role ids to
# keep, $4 if set: touch only these role ids (a layout's function roles, not other Rampart parts').
rampart_remove_roles() {
    local scope=$1 roles=$2 keep=" ${3:-} " only=${4:-} group id role member line parent
    read -r -a group <<<"$(rampart_scope_group "$scope")"
    id=${group[-1]}
    unset 'group[-1]'
    parent=$(rampart_scope_flag "$roles")
    local bindings
    bindings=$(gc_value "" "${group[@]}" get-iam-policy "$id" --flatten='bindings[].members' \
        --filter='bindings.role~/roles/rampart' --format='value(bindings.role,bindings.members)')
    while IFS=$'\t' read -r role member; do
        [[ -n $role && -n $member ]] || continue
        [[ $keep == *" ${role##*/} "* ]] && continue
        [[ -z $only || $only == *" ${role##*/} "* ]] || continue
        gc_delete "binding of $role to $member on ${group[*]} $id" "${group[@]}" \
            remove-iam-policy-binding "$id" --member="$member" --role="$role" --all
    done <<<"$bindings"
    local listed
    listed=$(gc_value "" iam roles list "$parent" --filter='name~/roles/rampart' --format='value(name)')
    for line in $listed; do
        role=${line##*/}
        [[ $keep == *" $role "* ]] && continue
        [[ -z $only || $only == *" $role "* ]] || continue
        gc_delete "custom role $line" iam roles delete "$role" "$parent" --quiet
    done
}

# What the current layout uses, as " name name ... " strings.
rampart_wanted() {
    local fn
    WANTED_SINKS=" " WANTED_TOPICS=" $RAMPART_DEAD_LETTER_TOPIC $RAMPART_ALERTS_TOPIC ${ALERTS_TOPIC_PATH##*/} "
    WANTED_SUBS=" $RAMPART_DEAD_LETTER_HOLD " WANTED_SERVICES=" " WANTED_TRIGGERS=" " WANTED_ROLES=" "
    WANTED_SAS=" $INVOKER_EMAIL $BUILD_EMAIL "
    for fn in "${FUNCTION_NAMES[@]}"; do
        WANTED_SINKS+="$(rampart_sink_name "$fn") "
        WANTED_TOPICS+="$(rampart_audit_topic "$fn") "
        if [[ $TRIGGER == push ]]; then WANTED_SUBS+="rampart-push-${fn//_/-} "; fi
        if [[ $TRIGGER == eventarc ]]; then WANTED_TRIGGERS+="rampart-${fn//_/-} "; fi
    done
    local i
    for i in "${!FUNCTION_NAMES[@]}"; do
        WANTED_SERVICES+="${FUNCTION_SERVICES[i]} "
        WANTED_SAS+="${FUNCTION_SAS[i]} "
        if ((FUNCTION_PERMS[i] > 0)); then WANTED_ROLES+="${FUNCTION_ROLES[i]} "; fi
    done
}

rampart_prune() {
    rampart_wanted
    local scope_label roles_label
    scope_label=$(rampart_scope_label)
    roles_label=$(rampart_roles_label)
    step "remove what this layout no longer uses (--functions $FUNCTIONS, --scope $SCOPE $SCOPE_ID, --trigger $TRIGGER)"
    local name item
    # 1. Sinks first: nothing may be routed to a topic about to go. In the watched scope, and in
    #    the scope the last deploy watched if that was another one.
    local scopes=("$scope_label")
    if [[ -n ${PREVIOUS_SCOPE:-} && $PREVIOUS_SCOPE != "$scope_label" ]]; then scopes+=("$PREVIOUS_SCOPE"); fi
    for item in "${scopes[@]}"; do
        for name in $(gc_value "" logging sinks list "$(rampart_scope_flag "$item")" \
            --filter='name:rampart-audit' --format='value(name)'); do
            name=${name##*/}
            if [[ $item == "$scope_label" && $WANTED_SINKS == *" $name "* ]]; then continue; fi
            gc_delete "sink $name ($item)" logging sinks delete "$name" "$(rampart_scope_flag "$item")" --quiet
        done
    done
    # 2. Deliveries, then the functions they call. (Eventarc is looked at only if this or the last
    #    layout used it: listing triggers fails where the Eventarc API is off.)
    local triggers_listed=""
    if [[ $TRIGGER == eventarc || ${PREVIOUS_TRIGGER:-} == eventarc ]]; then
        triggers_listed=$(gc_value "" eventarc triggers list --location="$REGION" --project="$PROJECT" \
            --filter='name~/triggers/rampart-' --format='value(name)')
    fi
    for name in $triggers_listed; do
        name=${name##*/}
        [[ $WANTED_TRIGGERS == *" $name "* ]] && continue
        gc_delete "Eventarc trigger $name" eventarc triggers delete "$name" --location="$REGION" --project="$PROJECT" --quiet
    done
    rampart_subscriptions
    while IFS=$'\t' read -r name _; do
        name=${name##*/}
        [[ $name == rampart-* ]] || continue
        [[ $WANTED_SUBS == *" $name "* ]] && continue
        gc_delete "subscription $name" pubsub subscriptions delete "$name" --project="$PROJECT"
    done <<<"$RAMPART_SUBSCRIPTIONS"
    for name in $(gc_value "" run services list --region="$REGION" --project="$PROJECT" \
        --filter='metadata.labels.app=rampart' --format='value(metadata.name)'); do
        [[ $WANTED_SERVICES == *" $name "* ]] && continue
        gc_delete "Cloud Run service $name" run services delete "$name" --region="$REGION" --project="$PROJECT" --quiet
    done
    for name in $(gc_value "" pubsub topics list --project="$PROJECT" --filter='labels.app=rampart' --format='value(name)'); do
        name=${name##*/}
        [[ $WANTED_TOPICS == *" $name "* ]] && continue
        gc_delete "topic $name" pubsub topics delete "$name" --project="$PROJECT"
    done
    # 3. Grants and roles of the old layout, then its service accounts: only per-function ones
    #    (LAYOUT_ROLES, LAYOUT_SAS), never the invoker, the builder or another part's identity.
    rampart_remove_roles "$scope_label" "$roles_label" "$WANTED_ROLES" "$LAYOUT_ROLES"
    if [[ -n ${PREVIOUS_SCOPE:-} && $PREVIOUS_SCOPE != "$scope_label" ]]; then
        rampart_remove_roles "$PREVIOUS_SCOPE" "${PREVIOUS_ROLES:-$PREVIOUS_SCOPE}" "" "$LAYOUT_ROLES"
    fi
    for name in $(gc_value "" iam service-accounts list --project="$PROJECT" \
        --filter='email~^rampart-' --format='value(email)'); do
        [[ $LAYOUT_SAS == *" $name "* ]] || continue
        [[ $WANTED_SAS == *" $name "* ]] && continue
        gc_delete "service account $name" iam service-accounts delete "$name" --project="$PROJECT" --quiet
    done
    rampart_record_layout
    rampart_report_removed
}

rampart_uninstall_confirm() {
    rampart_is_dry && return 0
    ((YES)) && return 0
    note ""
    note "About to REMOVE Rampart from project $PROJECT ($REGION) and its sinks and roles at $SCOPE $SCOPE_ID:"
    note "nothing will watch or remediate afterwards."
    RAMPART_STEP="confirm"
    local answer=""
    if ! { read -r -p "Remove everything Rampart created? [y/N] " answer </dev/tty; } 2>/dev/null; then
        die "no terminal to ask on: pass --yes to uninstall without confirmation (or --dry-run to see the commands)"
    fi
    [[ $answer == [yY] || $answer == [yY][eE][sS] ]] || die "stopped: nothing was removed"
}

rampart_uninstall() {
    local scope_label roles_label name fn i item
    scope_label=$(rampart_scope_label)
    roles_label=$(rampart_roles_label)
    local previous_scope previous_roles previous_trigger
    previous_trigger=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-trigger)' 2>/dev/null || true)
    previous_scope=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-scope)' 2>/dev/null || true)
    previous_roles=$(gc_value "" secrets describe "$RAMPART_SECRET_POLICY" --project="$PROJECT" --format='value(labels.rampart-roles)' 2>/dev/null || true)
    local scopes=("$scope_label")
    if [[ -n $previous_scope && $previous_scope != "$scope_label" ]]; then scopes+=("$previous_scope"); fi

    step "1. audit-log sinks first, so that no entry is routed to a deleted topic"
    for item in "${scopes[@]}"; do
        local sinks=" "
        for fn in "${FUNCTION_NAMES[@]}"; do sinks+="$(rampart_sink_name "$fn") "; done
        for name in $(gc_value "" logging sinks list "$(rampart_scope_flag "$item")" \
            --filter='name:rampart-audit' --format='value(name)'); do
            sinks+="${name##*/} "
        done
        for name in $(rampart_unique $sinks); do
            gc_delete "sink $name ($item)" logging sinks delete "$name" "$(rampart_scope_flag "$item")" --quiet
        done
    done

    step "1b. the sweep's schedule, so that no sweep starts while the rest goes"
    gc_delete "Cloud Scheduler job $RAMPART_SWEEP_JOB" scheduler jobs delete "$RAMPART_SWEEP_JOB" \
        --location="$REGION" --project="$PROJECT" --quiet

    step "2. deliveries: push subscriptions, Eventarc triggers, the dead-letter holds"
    local subs=" $RAMPART_DEAD_LETTER_HOLD $RAMPART_DEAD_LETTER_PUSH $RAMPART_SWEEP_SUBSCRIPTION $RAMPART_SWEEP_DEAD_LETTER_HOLD "
    local triggers=" "
    for fn in "${FUNCTION_NAMES[@]}"; do
        if [[ $TRIGGER == push ]]; then subs+="rampart-push-${fn//_/-} "; else triggers+="rampart-${fn//_/-} "; fi
    done
    if [[ $TRIGGER == eventarc || $previous_trigger == eventarc ]]; then
        for name in $(gc_value "" eventarc triggers list --location="$REGION" --project="$PROJECT" \
            --filter='name~/triggers/rampart-' --format='value(name)'); do
            triggers+="${name##*/} "
        done
    fi
    for name in $(rampart_unique $triggers); do
        gc_delete "Eventarc trigger $name" eventarc triggers delete "$name" --location="$REGION" --project="$PROJECT" --quiet
    done
    rampart_subscriptions
    while IFS=$'\t' read -r name _; do
        name=${name##*/}
        if [[ $name == rampart-* ]]; then subs+="$name "; fi
    done <<<"$RAMPART_SUBSCRIPTIONS"
    for name in $(rampart_unique $subs); do
        gc_delete "subscription $name" pubsub subscriptions delete "$name" --project="$PROJECT"
    done

    step "3. the functions"
    local services=" $RAMPART_DEAD_LETTER_SERVICE $RAMPART_SWEEP_SERVICE "
    for i in "${!FUNCTION_SERVICES[@]}"; do services+="${FUNCTION_SERVICES[i]} "; done
    for name in $(gc_value "" run services list --region="$REGION" --project="$PROJECT" \
        --filter='metadata.labels.app=rampart' --format='value(metadata.name)'); do
        services+="$name "
    done
    for name in $(rampart_unique $services); do
        gc_delete "Cloud Run service $name" run services delete "$name" --region="$REGION" --project="$PROJECT" --quiet
    done

    step "4. topics"
    local topics=" $RAMPART_DEAD_LETTER_TOPIC $RAMPART_ALERTS_TOPIC $RAMPART_SWEEP_TOPIC $RAMPART_SWEEP_DEAD_LETTER_TOPIC "
    for fn in "${FUNCTION_NAMES[@]}"; do topics+="$(rampart_audit_topic "$fn") "; done
    for name in $(gc_value "" pubsub topics list --project="$PROJECT" --filter='labels.app=rampart' --format='value(name)'); do
        topics+="${name##*/} "
    done
    for name in $(rampart_unique $topics); do
        gc_delete "topic $name" pubsub topics delete "$name" --project="$PROJECT"
    done

    step "5. Rampart's own monitoring: alert policies and log-based metrics"
    rampart_monitoring_remove

    step "6. secrets (the policy and the alert channels' credentials)"
    for name in "$RAMPART_SECRET_POLICY" "$RAMPART_SECRET_SLACK" "$RAMPART_SECRET_SMTP"; do
        gc_delete "secret $name" secrets delete "$name" --project="$PROJECT" --quiet
    done
    if [[ -n $DEDUPE_DATABASE && $DEDUPE_DATABASE != "(default)" ]]; then
        gc_delete "Firestore database $DEDUPE_DATABASE (alert dedupe claims)" firestore databases delete \
            --database="$DEDUPE_DATABASE" --project="$DEDUPE_PROJECT"
    fi

    step "7. grants and custom roles, then the service accounts"
    local parent group id roles_done=" "
    parent=$(rampart_scope_flag "$roles_label")
    read -r -a group <<<"$(rampart_scope_group "$scope_label")"
    id=${group[-1]}
    unset 'group[-1]'
    for i in "${!FUNCTION_NAMES[@]}"; do
        gc_delete "binding of $(rampart_role_name "${FUNCTION_ROLES[i]}") to ${FUNCTION_SAS[i]}" "${group[@]}" \
            remove-iam-policy-binding "$id" --member="serviceAccount:${FUNCTION_SAS[i]}" \
            --role="$(rampart_role_name "${FUNCTION_ROLES[i]}")" --all
        gc_delete "custom role $(rampart_role_name "${FUNCTION_ROLES[i]}")" iam roles delete "${FUNCTION_ROLES[i]}" "$parent" --quiet
        roles_done+="${FUNCTION_ROLES[i]} "
    done
    rampart_remove_roles "$scope_label" "$roles_label" "$roles_done"
    if [[ -n $previous_scope && $previous_scope != "$scope_label" ]]; then
        rampart_remove_roles "$previous_scope" "${previous_roles:-$previous_scope}" ""
    fi
    gc_delete "binding of roles/run.builder to $BUILD_EMAIL" projects remove-iam-policy-binding "$PROJECT" \
        --member="serviceAccount:$BUILD_EMAIL" --role=roles/run.builder --all
    local sas=" $INVOKER_EMAIL $BUILD_EMAIL "
    for i in "${!FUNCTION_SAS[@]}"; do sas+="${FUNCTION_SAS[i]} "; done
    if [[ -n $DEDUPE_DATABASE ]]; then
        for i in "${!FUNCTION_SAS[@]}"; do
            gc_delete "binding of roles/datastore.user to ${FUNCTION_SAS[i]}" projects remove-iam-policy-binding \
                "$DEDUPE_PROJECT" --member="serviceAccount:${FUNCTION_SAS[i]}" --role=roles/datastore.user --all
        done
    fi
    # The sweep's progress and dedupe grant (conditional on its database; --all takes it with its condition).
    local sweep_sa="$RAMPART_SWEEP_SA@$PROJECT.iam.gserviceaccount.com"
    gc_delete "binding of roles/datastore.user to $sweep_sa" projects remove-iam-policy-binding \
        "${DEDUPE_PROJECT:-$PROJECT}" --member="serviceAccount:$sweep_sa" --role=roles/datastore.user --all
    sas+="$sweep_sa "
    for name in $(gc_value "" iam service-accounts list --project="$PROJECT" --filter='email~^rampart-' --format='value(email)'); do
        sas+="$name "
    done
    for name in $(rampart_unique $sas); do
        gc_delete "service account $name" iam service-accounts delete "$name" --project="$PROJECT" --quiet
    done

    rampart_report_removed
    note ""
    note "Kept: the APIs Rampart enabled (other workloads may use them)."
    if [[ -n $KMS_KEY ]]; then
        note "Kept: the KMS key $KMS_KEY: Cloud KMS never deletes key rings or keys; destroy its versions yourself if nothing else uses it."
    fi
    note "Kept: the container images of the source deploys, in Artifact Registry repository cloud-run-source-deploy ($REGION)."
    if [[ -z $DEDUPE_DATABASE || $DEDUPE_DATABASE == "(default)" ]]; then
        note "Kept: the (default) Firestore database (other workloads may use it); Rampart's collections there are rampart_alerts, rampart_quarantine and rampart_sweeps."
    fi
}
