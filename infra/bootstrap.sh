#!/usr/bin/env bash
# Everything Rampart needs before its functions deploy: APIs, the CMEK key (optional), topics,
# secrets (created empty), the Firestore dedupe database (if the policy uses it), service
# accounts, custom roles bound at the watched scope, and per-resource grants.
# Idempotent: each resource is looked up before it is created; re-running converges roles.
#
#   infra/bootstrap.sh --project P [--scope org --scope-id ORG] [--dry-run] ...  (see --help)
# deploy.sh runs this first; run it alone to prepare a project without deploying.

rampart_bootstrap() {
    local i fn sa

    step "enable the APIs Rampart uses"
    local apis=(run.googleapis.com cloudbuild.googleapis.com artifactregistry.googleapis.com
        logging.googleapis.com pubsub.googleapis.com secretmanager.googleapis.com iam.googleapis.com
        cloudresourcemanager.googleapis.com)
    if [[ -n $KMS_KEY ]]; then apis+=(cloudkms.googleapis.com); fi
    if [[ -n $DEDUPE_DATABASE ]]; then apis+=(firestore.googleapis.com); fi
    if [[ $TRIGGER == eventarc ]]; then apis+=(eventarc.googleapis.com); fi
    gc services enable "${apis[@]}" --project="$PROJECT"

    step "look up the project number (for Google's service agents)"
    rampart_project_number
    # Created on first use otherwise; the grants below need it to exist now.
    gc beta services identity create --service=pubsub.googleapis.com --project="$PROJECT"

    rampart_bootstrap_kms
    rampart_bootstrap_topics
    rampart_bootstrap_secrets
    rampart_bootstrap_firestore

    step "service accounts: one per function (never the default compute account), an invoker, a builder"
    for i in "${!FUNCTION_NAMES[@]}"; do
        rampart_ensure_sa "${FUNCTION_SAS[i]}" "Rampart ${FUNCTION_NAMES[i]} (runtime)" \
            "Runs the Rampart function ${FUNCTION_SERVICES[i]}: rules ${FUNCTION_RULES[i]:-all enabled}"
    done
    rampart_ensure_sa "$INVOKER_EMAIL" "Rampart push invoker" "Pub/Sub push and Eventarc call Rampart's functions as this account"
    rampart_ensure_sa "$BUILD_EMAIL" "Rampart build" "Cloud Build runs Rampart's source deploys as this account"
    gc_bind projects add-iam-policy-binding "$PROJECT" --member="serviceAccount:$BUILD_EMAIL" \
        --role=roles/run.builder --condition=None

    step "custom roles from python main.py iam-role, bound at the $SCOPE $SCOPE_ID"
    for i in "${!FUNCTION_NAMES[@]}"; do
        rampart_ensure_role "$i"
    done

    rampart_bootstrap_split

    step "per-resource grants: each function reads only its own secrets"
    for i in "${!FUNCTION_NAMES[@]}"; do
        fn=${FUNCTION_NAMES[i]}
        sa=${FUNCTION_SAS[i]}
        local mount secret
        for mount in "${SECRET_MOUNTS[@]}"; do
            secret=${mount#*=}
            gc_bind secrets add-iam-policy-binding "$secret" --project="$PROJECT" \
                --member="serviceAccount:$sa" --role=roles/secretmanager.secretAccessor
        done
        if [[ -n $ALERTS_TOPIC_PATH ]]; then
            gc_bind pubsub topics add-iam-policy-binding "$ALERTS_TOPIC_PATH" \
                --member="serviceAccount:$sa" --role=roles/pubsub.publisher
        fi
        if [[ -n $DEDUPE_DATABASE ]]; then
            # Read/write documents, in Rampart's database only.
            gc_bind projects add-iam-policy-binding "$DEDUPE_PROJECT" --member="serviceAccount:$sa" \
                --role=roles/datastore.user \
                --condition="expression=resource.name == \"projects/$DEDUPE_PROJECT/databases/$DEDUPE_DATABASE\",title=rampart-dedupe-only,description=Rampart alert dedupe claims"
        fi
        if ((${#SECRET_MOUNTS[@]} == 0)) && [[ -z $ALERTS_TOPIC_PATH && -z $DEDUPE_DATABASE ]]; then
            note "$fn: the policy configures no alert channel secrets, Pub/Sub alerts or Firestore dedupe: no grants needed"
        fi
    done
}

rampart_bootstrap_kms() {
    [[ -n $KMS_KEY ]] || return 0
    local key_args=("$KMS_KEY_ID" --keyring="$KMS_RING" --location="$KMS_LOCATION" --project="$KMS_PROJECT")
    if ((CREATE_KMS_KEY)); then
        step "create the Rampart KMS key (CMEK for topics, secrets, Firestore) in $REGION"
        # Looking the key up first answers for its ring too on every run after the first.
        if ! gc_exists kms keys describe "${key_args[@]}" --format='value(name)'; then
            if ! gc_exists kms keyrings describe "$KMS_RING" --location="$KMS_LOCATION" --project="$KMS_PROJECT" --format='value(name)'; then
                gc kms keyrings create "$KMS_RING" --location="$KMS_LOCATION" --project="$KMS_PROJECT"
            fi
            # 90 days: the policy's kms_rotation limit. The first rotation is due 90 days out (UTC midnight).
            local next
            next=$("$PYTHON" -c 'import datetime as d; print((d.datetime.now(d.timezone.utc).date() + d.timedelta(days=90)).isoformat() + "T00:00:00Z")')
            gc kms keys create "${key_args[@]}" --purpose=encryption --rotation-period=90d \
                --next-rotation-time="$next" --labels=app=rampart
        fi
    else
        step "check the KMS key exists"
        gc_must_exist "KMS key $KMS_KEY" kms keys describe "${key_args[@]}" --format='value(name)'
    fi
    step "let Google's service agents encrypt with the KMS key (CMEK)"
    local services=(secretmanager.googleapis.com) agents=("$PUBSUB_AGENT" "service-$PROJECT_NUMBER@gcp-sa-secretmanager.iam.gserviceaccount.com")
    if [[ -n $DEDUPE_DATABASE ]]; then
        services+=(firestore.googleapis.com)
        agents+=("service-$PROJECT_NUMBER@gcp-sa-firestore.iam.gserviceaccount.com")
    fi
    local service agent
    for service in "${services[@]}"; do
        gc beta services identity create --service="$service" --project="$PROJECT"
    done
    for agent in "${agents[@]}"; do
        gc_bind kms keys add-iam-policy-binding "${key_args[@]}" --member="serviceAccount:$agent" \
            --role=roles/cloudkms.cryptoKeyEncrypterDecrypter
    done
}

rampart_bootstrap_topics() {
    step "Pub/Sub topics: one audit topic per function, the dead-letter topic, the alerts topic"
    local wanted=("$RAMPART_DEAD_LETTER_TOPIC") fn t
    if [[ -z $ALERTS_TOPIC_PATH ]]; then
        wanted+=("$RAMPART_ALERTS_TOPIC")
        note "alerts: the policy has no Pub/Sub channel; topic $RAMPART_ALERTS_TOPIC is created for it: add"
        note "  alerts: {pubsub: {topic: projects/$PROJECT/topics/$RAMPART_ALERTS_TOPIC}} to $POLICY to use it"
    elif [[ $ALERTS_TOPIC_PATH == projects/$PROJECT/topics/* ]]; then
        wanted+=("${ALERTS_TOPIC_PATH##*/}")
    else
        note "alerts: the policy's topic $ALERTS_TOPIC_PATH is in another project; it must exist there"
    fi
    for fn in "${FUNCTION_NAMES[@]}"; do
        t=$(rampart_audit_topic "$fn")
        [[ " ${wanted[*]} " == *" $t "* ]] || wanted+=("$t")
    done
    rampart_ensure_topics "${wanted[@]}"
    rampart_ensure_hold "$RAMPART_DEAD_LETTER_HOLD" "$RAMPART_DEAD_LETTER_TOPIC"
}

rampart_bootstrap_secrets() {
    step "Secret Manager secrets for the alert channels (created empty; their values are never read here)"
    local replication=(--replication-policy=user-managed --locations="$REGION") s
    if [[ -n $KMS_KEY ]]; then
        printf '{"userManaged": {"replicas": [{"location": "%s", "customerManagedEncryption": {"kmsKeyName": "%s"}}]}}\n' \
            "$REGION" "$KMS_KEY" >"$WORK/secret-replication.json"
        replication=(--replication-policy-file="$WORK/secret-replication.json")
    fi
    for s in "$RAMPART_SECRET_SLACK" "$RAMPART_SECRET_SMTP"; do
        if ! gc_exists secrets describe "$s" --project="$PROJECT" --format='value(name)'; then
            gc secrets create "$s" --project="$PROJECT" "${replication[@]}" --labels=app=rampart
        fi
    done
    local mount
    for mount in "${SECRET_MOUNTS[@]}"; do
        note "the policy reads ${mount%%=*}: mounted from secret ${mount#*=} (add its value with deploy.sh's hint if it has none)"
    done
}

rampart_bootstrap_firestore() {
    [[ -n $DEDUPE_DATABASE ]] || return 0
    step "Firestore (native mode) database $DEDUPE_DATABASE for alert dedupe claims, in $REGION"
    if ! gc_exists firestore databases describe --database="$DEDUPE_DATABASE" --project="$DEDUPE_PROJECT" --format='value(name)'; then
        local cmek=()
        if [[ -n $KMS_KEY ]]; then cmek=(--kms-key-name="$KMS_KEY"); fi
        gc firestore databases create --database="$DEDUPE_DATABASE" --location="$REGION" \
            --type=firestore-native --delete-protection "${cmek[@]}" --project="$DEDUPE_PROJECT"
    fi
    # Claims carry expire_at; a TTL policy deletes them once they have served their window.
    gc firestore fields ttls update expire_at --collection-group="$DEDUPE_COLLECTION" \
        --database="$DEDUPE_DATABASE" --enable-ttl --async --project="$DEDUPE_PROJECT"
}

rampart_ensure_sa() {
    local email=$1 display=$2 description=$3
    if ! gc_exists iam service-accounts describe "$email" --project="$PROJECT" --format='value(email)'; then
        gc iam service-accounts create "${email%%@*}" --project="$PROJECT" \
            --display-name="$display" --description="$description"
    fi
}

# Create or update the custom role from the generated file, then bind it at the scope. A
# function whose rules only alert needs no permissions: no role (an old one is emptied).
rampart_ensure_role() {
    local i=$1
    local fn=${FUNCTION_NAMES[i]} role=${FUNCTION_ROLES[i]} sa=${FUNCTION_SAS[i]} parent
    parent=$(rampart_role_parent)
    local file="$WORK/$fn.role.yaml"
    if gc_exists iam roles describe "$role" "$parent" --format='value(name)'; then
        local deleted
        deleted=$(gc_value "" iam roles describe "$role" "$parent" --format='value(deleted)')
        if [[ $deleted == True ]]; then
            gc iam roles undelete "$role" "$parent"
        fi
        if ((FUNCTION_PERMS[i] == 0)); then
            note "$fn: its enabled rules only alert: emptying the old role $role"
            gc iam roles update "$role" "$parent" --permissions="" --quiet
            return 0
        fi
        gc iam roles update "$role" "$parent" --file="$file" --quiet
    else
        if ((FUNCTION_PERMS[i] == 0)); then
            note "$fn: its enabled rules only alert: no remediation role needed"
            return 0
        fi
        gc iam roles create "$role" "$parent" --file="$file"
    fi
    RAMPART_BINDING_CONDITION=$(<"$WORK/$fn.condition") \
        rampart_scope_binding --member="serviceAccount:$sa" --role="$(rampart_role_name "$role")"
}

# --functions split: only the detector may publish action requests; the writers read the entries
# they act on from Cloud Logging, through a role holding logging.logEntries.list alone (the KMS
# writer's own role is conditioned on KMS resource types, which a log read is not).
rampart_bootstrap_split() {
    local i sa parent has_writer=0
    for i in "${!FUNCTION_NAMES[@]}"; do
        sa=${FUNCTION_SAS[i]}
        case ${FUNCTION_IDENTITIES[i]} in
            detect)
                step "only the detector ($sa) may publish to $RAMPART_ACTIONS_TOPIC"
                gc_bind pubsub topics add-iam-policy-binding "$RAMPART_ACTIONS_TOPIC" --project="$PROJECT" \
                    --member="serviceAccount:$sa" --role=roles/pubsub.publisher
                ;;
            act-*) has_writer=1 ;;
        esac
    done
    ((has_writer)) || return 0
    step "role $RAMPART_LOGS_ROLE (logging.logEntries.list) for the writers, at the $SCOPE $SCOPE_ID"
    parent=$(rampart_role_parent)
    printf 'title: Rampart log reader\ndescription: Read Admin Activity entries to confirm them before acting\nstage: GA\nincludedPermissions:\n- logging.logEntries.list\n' \
        >"$WORK/$RAMPART_LOGS_ROLE.role.yaml"
    if gc_exists iam roles describe "$RAMPART_LOGS_ROLE" "$parent" --format='value(name)'; then
        gc iam roles update "$RAMPART_LOGS_ROLE" "$parent" --file="$WORK/$RAMPART_LOGS_ROLE.role.yaml" --quiet
    else
        gc iam roles create "$RAMPART_LOGS_ROLE" "$parent" --file="$WORK/$RAMPART_LOGS_ROLE.role.yaml"
    fi
    for i in "${!FUNCTION_NAMES[@]}"; do
        [[ ${FUNCTION_IDENTITIES[i]} == act-* ]] || continue
        rampart_scope_binding --member="serviceAccount:${FUNCTION_SAS[i]}" --role="$(rampart_role_name "$RAMPART_LOGS_ROLE")"
    done
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit
    # deploy.sh lints lib.sh with this file; following it from here as well triples the lint time.
    # shellcheck source=/dev/null
    source infra/lib.sh
    rampart_init "infra/bootstrap.sh" "$@"
    rampart_confirm
    rampart_bootstrap
    note ""
    note "bootstrap done. Next: ./deploy.sh with the same options."
fi
