"""A local stand-in for the Cloud Run Admin API v2 and the Cloud KMS API v1 (REST, JSON), stdlib only.

There is no emulator for run.googleapis.com or cloudkms.googleapis.com, so integration tests, the
demo and the benchmarks drive this server through the real `run_v2.ServicesClient` and
`kms_v1.KeyManagementServiceClient` (REST transport, AnonymousCredentials, `api_endpoint` set to
`http://127.0.0.1:PORT`). It listens on loopback only.

    python -m infra.local.standin --port 8089 [--seed infra/local/seed.example.json] [--verbose]
    python -m infra.local.standin --port 0 --port-file /tmp/port   # the OS picks; the port is written there

In-process (unit tests): `with StandinServer(seed=...) as srv: StandinAdmin(srv.url).state()`
(`server.StandinServer`, `client.StandinAdmin`).

Layout: one module per Google API, each naming the discovery document its routes and shapes are
checked against (google-api-python-client's `googleapiclient/discovery_cache/documents/`):
  run_v2.py        Cloud Run Admin API v2      run.v2.json
  cloudkms_v1.py   Cloud KMS API v1            cloudkms.v1.json
  cloudasset_v1.py Cloud Asset Inventory v1    cloudasset.v1.json (searchAllResources, searchAllIamPolicies)
over a small shared core:
  core.py          errors (google.rpc shape), Route / Collection / Api, JSON, enum and time helpers
  store.py         state: one table per collection, parents, IAM policies, operations, clock
  iam.py           getIamPolicy / setIamPolicy / testIamPermissions, shared by every API
  operations.py    long-running operations (google.longrunning.Operation)
  seeding.py       the seed format (load, apply all-or-nothing, dump)
  faults.py        fault injection
  app.py           routing, the request log, the admin API
  server.py        HTTP layer and CLI;  client.py  the admin client (StandinAdmin)
  apis.py          THE registry: the tuple of served APIs

Adding an API (e.g. Cloud Asset v1) is one module and one line:
  1. infra/local/standin/cloudasset_v1.py: a docstring naming its discovery document
     ("cloudasset.v1.json"), handlers `(store, path_vars, query, body) -> Response` (raise
     core.ApiError / core.bad / core.not_found for errors), and
         API = Api(name="cloudasset_v1", discovery="cloudasset.v1.json",
                   routes=(Route("GET", "/v1/{parent=*/*}/assets", "cloudasset.assets.list", fn), ...),
                   collections=(Collection("assets", NAME_RE, seed=..., view=..., patch=...), ...))
     Route templates are the google.api.http ones (`*` = one name segment), matching the document's
     flatPath, or its path and parameter pattern; the third field is the discovery method id. Each Collection's key is a new seed/state key and a store table; IAM
     methods come from `iam.routes(...)`, long-running answers from `operations.answer(...)`.
  2. add `cloudasset_v1.API` to APIS in infra/local/standin/apis.py.
`Api.name` is the module's name. The contract tests (tests/test_standin_contract.py, over the generic
checker tests/support/contract.py) iterate over every registered route: each must name a method of the
module's discovery document with the same verb and path, with no change to the tests. To have its
requests and responses checked too, add one function driving the new routes through the real client
library to SCENARIOS there (keyed by `Api.name`); a registered route that no scenario reaches fails.

API surface (paths, verbs and bodies as the google-cloud-run 0.16 / google-cloud-kms 3.18 REST
transports send them):
  Run v2   GET|PATCH|DELETE /v2/projects/P/locations/L/services/S      (PATCH: updateMask, validateOnly,
           GET|POST /v2/projects/P/locations/L/services (list, create)   allowMissing; etag checked)
           GET .../services/S:getIamPolicy  POST .../services/S:setIamPolicy|:testIamPermissions
           GET|DELETE /v2/projects/P/locations/L/operations/O, POST .../operations/O:wait
           Writes answer a done Operation whose `response` and `metadata` are the typed Service.
  KMS v1   GET|POST .../keyRings, GET .../keyRings/R, GET|POST .../cryptoKeys, GET|PATCH .../cryptoKeys/K,
           POST .../cryptoKeys/K:updatePrimaryVersion, GET|POST .../cryptoKeyVersions,
           GET|PATCH .../cryptoKeyVersions/N (updateMask=state), POST .../cryptoKeyVersions/N:destroy|:restore,
           GET :getIamPolicy and POST :setIamPolicy|:testIamPermissions on key rings and crypto keys.

Fidelity choices (each checked against the published API or the client libraries):
  * Enums are stored and returned as names; integers in request bodies (the clients send
    `$alt=json;enum-encoding=int`) are mapped through tables copied from the protos
    (tests/test_standin_run.py checks the tables against the installed protos).
  * A Service write with a stale `etag` fails 409 ABORTED (see "cannot settle" below).
  * Every Service write moves etag, generation, observedGeneration, updateTime and lastModifier; a
    changed template also creates a new revision name. Without updateMask a PATCH replaces every
    writable field (output-only fields in the body are ignored); with one, only the masked paths change.
  * Labels and annotations in the run.googleapis.com, cloud.googleapis.com, serving.knative.dev and
    autoscaling.knative.dev namespaces are rejected (400) unless the resource already carries them.
  * IAM: an empty policy reads `{"version": 1, "etag": "ACAB"}`; etags are base64; the default
    setIamPolicy mask is `bindings,etag`; conditions need version 3; members must have a known prefix.
  * KMS: updateMask is required; state moves only ENABLED<->DISABLED (else 400 FAILED_PRECONDITION);
    destroy sets DESTROY_SCHEDULED and destroyTime = now + the key's destroyScheduledDuration (30 days
    if unset); restore (DESTROY_SCHEDULED only) gives DISABLED; once destroyTime passes the version
    reads DESTROYED. The clock can be advanced through the admin API. A key's `primary` is the live
    primary version.

Behaviours the discovery documents cannot settle (the contract tests check paths, verbs, fields,
types and enum values; these are choices, each with its source, and what Rampart does about them):
  * A stale etag. AIP-154 (google.aip.dev/154) says ABORTED / HTTP 409 since aip-dev/google.aip.dev
    PR #705 (2021) and PR #837 (2022); before, it said FAILED_PRECONDITION, which google/rpc/code.proto
    maps to HTTP 400 (and in PR #837 a reviewer argued for 412, HTTP's failed If-Match precondition,
    RFC 9110 section 13.1.1 / RFC 7232 section 3.1). code.proto's own guidance says ABORTED when "the
    client should restart a read-modify-write sequence". IAM's setIamPolicy answers 409 ABORTED
    "There were concurrent policy changes" (GoogleCloudPlatform/deploymentmanager-samples #52,
    terraform-provider-google #12512). run.v2.json only says the Service etag "May be used to detect
    modification conflict during updates". The stand-in answers 409 ABORTED; Rampart treats 409, 412
    and 400 FAILED_PRECONDITION alike (shared.actions.is_conflict), which
    tests/test_stale_etag_answers.py checks for a service write and Run and KMS policy writes.
  * A 409 that is no etag race: Cloud Run answers 409 "Revision named ... with different
    configuration already exists" (googleapis/google-cloud-python #14259, terraform-provider-google
    #14569). Rampart reads the etag again and fails the record when it has not moved
    (tests/test_run_actions.py::test_conflict_without_a_concurrent_change_is_a_failure).
  * services.patch without updateMask: run.v2.json says only "Optional. The list of fields to be
    updated." AIP-134 (google.aip.dev/134) says an absent mask means "all fields that are populated";
    other Google APIs say all fields are overwritten (e.g. API Gateway's UpdateApiRequest). The stand-in
    replaces every writable field by default (the older Run v2 UpdateService had no mask), and reads
    it the AIP-134 way after POST /_standin/settings {"run_patch_without_mask": "implied"}. This
    matters: the clients omit proto3 defaults from JSON (a `false` invokerIamDisabled is not sent),
    so under AIP-134 a revert to a default value would not apply. Rampart therefore sends an
    explicit updateMask for every service write (shared.actions.run.mask_of) and fails a revert
    whose answered service still needs it; tests/test_run_actions.py::
    test_reverts_and_quarantine_hold_whichever_way_cloud_run_reads_a_maskless_patch runs both.
  * Error bodies: discovery documents define no error envelope. The shape {"error": {"code",
    "message", "status", "details"}} and the HTTP mapping of google.rpc.Code come from the API design
    guide (cloud.google.com/apis/design/errors, AIP-193) and google/rpc/code.proto. The Python REST
    clients map an error by its HTTP status only (google.api_core.exceptions.from_http_response), so
    callers see Conflict / BadRequest, never Aborted / FailedPrecondition; the rpc status is in the body.
  * Enum numbers: documents list enum names only; the GAPIC REST clients send numbers
    (`$alt=json;enum-encoding=int`, `$alt` being the system parameter `alt`,
    cloud.google.com/apis/docs/system-parameters). The numbers come from the protos (run_v2.py and
    cloudkms_v1.py tables, checked against the installed protos by tests/test_standin_*.py).
  * Long-running operations: documents type `metadata` and `response` as Any; their message types
    come from the protos' operation_info (Run v2 writes: Service and Service). The stand-in's
    operations are done at once unless a `pending_polls` fault holds them; real ones take seconds and
    log two audit entries (cloud.google.com/run/docs/audit-logging).
  * KMS state changes that the current state forbids (destroy twice, restore an ENABLED version):
    the stand-in answers 400 FAILED_PRECONDITION, as code.proto describes ("the system is not in a
    state required"); cloudkms.v1.json names no error.
  * A never-set IAM policy reads {"version": 1, "etag": "ACAB"}: BELIEF, no published source found.

Seed format (`--seed FILE`, `POST /_standin/seed`; same shape as `GET /_standin/state`; upserts by name):
  {
    "services":          [Service JSON with "name"; output-only fields are filled in if absent],
    "policies":          {"<resource name>": Policy JSON (etag optional)},
    "keyRings":          [KeyRing JSON with "name"],
    "cryptoKeys":        [CryptoKey JSON with "name"; "primary": {"name": VERSION} optional,
                          version 1 is the primary of an ENCRYPT_DECRYPT key otherwise],
    "cryptoKeyVersions": [CryptoKeyVersion JSON with "name"; state defaults to ENABLED],
    "caller":            "email recorded as creator/lastModifier of API writes" (optional)
  }
Parents must exist (in the store or earlier in the same seed); a bad seed changes nothing.

Admin API (JSON; not logged, not subject to faults):
  GET  /_standin/health                 -> 200 "ok"
  POST /_standin/reset                  back to the startup state (--seed or empty); clears faults,
                                        the request log, operations and the clock offset
  POST /_standin/seed                   seed format above -> counts
  GET  /_standin/state                  everything, in seed format
  GET|DELETE /_standin/requests         ring buffer of {method, path, query, status, time, durationMs,
                                        faults, body (writes, first 4 KiB)}
  POST /_standin/faults                 {"method": "PATCH"|"*", "path": regex searched in the URL path,
                                         "count": N (null = unlimited), "skip": N, "status": 503,
                                         "rpc_status": "UNAVAILABLE", "message": str, "delay_ms": 0,
                                         "move_etag": false, "drop": false, "probability": 1.0,
                                         "pending_polls": 0, "seed": int (reseeds the fault RNG)}
                                        The next `count` matching API requests (after `skip`) are
                                        delayed, have their resource's etag moved as if someone else
                                        wrote first (Run services and IAM policies; KMS keys and
                                        versions have no etag), have the connection dropped, and/or
                                        fail with `status` in google.rpc shape. `pending_polls: N`
                                        makes a Run write answer a long-running operation that is
                                        not done: GET .../operations/O reads `done: false` N more
                                        times, then the result (the write itself applies at once).
  GET|DELETE /_standin/faults
  POST /_standin/mutate                 a concurrent writer: {"resource": name, "actor": email,
                                         "patch": JSON merge patch, "iam_add": {"role", "member",
                                         "condition"?}, "iam_remove": {"role", "member"},
                                         "delete": true (services only)}; moves etags.
  GET|POST /_standin/clock              {"advance_seconds": N} moves the stand-in's clock forward.
  GET|POST /_standin/settings           switch a behaviour the discovery documents leave open
                                         (SETTINGS in app.py, each with its sources), e.g.
                                         {"run_patch_without_mask": "implied"}; reset restores them.
"""
