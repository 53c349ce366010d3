"""`make mutate`: mutation testing of the core with mutmut, as a measured figure (not a gate).

mutmut (settings in setup.cfg) copies the tree to mutants/, makes small changes to the core
(event intake shared/event.py, rules functions/ and shared/rules.py, decision shared/pipeline.py,
views and actions shared/views/ and shared/actions/, dedupe shared/alerts/dedupe.py, config
shared/config.py) and runs, for each, the fast tests that cover the changed function. A mutant
the tests pass on survived; one no test reaches has "no tests" (a survivor too: nothing would
notice it). A survivor that no test could kill, because it changes nothing observable, is listed
in EQUIVALENT below with the reason, and counted as "equivalent" instead of "survived".

A whole run takes over an hour on a shared 2-core machine, so modules are measured one run at a
time and merged into bench/mutate_results.json: each module keeps its own counts, the commit it
was measured at, and its survivors. A module measured at a commit whose code for that module has
changed since (checked when results are merged) is marked stale; a core module with no
measurement is listed as not measured. Neither counts in the figure, which is computed only over
the modules measured and current, and says which those are.

    python -m bench.mutate                              # every core module (over an hour), then merge
    python -m bench.mutate --only "shared.actions.*"    # only the mutants matching (mutmut names), then merge
    python -m bench.mutate --collect                    # merge what the last runs left in mutants/
    python -m bench.mutate --merge A.json B.json        # take in results files of runs in other clones
    python -m bench.mutate --readme                     # the README's block, from bench/mutate_results.json
"""

from __future__ import annotations

import argparse
import configparser
import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench import provenance
from bench.provenance import ROOT

RESULTS = ROOT / "bench" / "mutate_results.json"
MUTANTS = ROOT / "mutants"
# mutmut's exit codes per mutant (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "caught_by_type_check", -11: "segfault", -9: "segfault", None: "not_checked"}
NOT_KILLED = ("survived", "no_tests")
KILLED = ("killed", "timeout")

# Survivors that change nothing a caller, a user or Google could observe: mutmut name -> why.
# `mutmut show NAME` prints the mutation. Only survivors are looked up here; a listed mutant
# that a test kills counts as killed.
_RPC_FALLBACK = ("_rpc_status's gRPC fallback: is_conflict asks it only about a BadRequest that is not a FailedPrecondition,"
                 " whose gRPC code is never FAILED_PRECONDITION, so no answer changes")
_FN_VERSION = "the Functions IAM read's default policy version: get_policy always asks for version 3 in its options"
_FN_TIMEOUT = "the Functions IAM calls' default timeout: get_policy and set_policy always pass one"
_PLAN_BEFORE = "edit_policy reports facts of the last read (run.state), never the plan's `before`; the engine does not read it"
_NO_ETAG = ("a policy read without an etag: getIamPolicy always answers one (google.iam.v1.Policy.etag; the stand-in too),"
            " so the default is never used")
EQUIVALENT: dict[str, str] = {
    "shared.actions.iam.x_edit_policy__mutmut_12":
        "the compliant plan's writes None instead of []: converge only tests `not p.writes`, and nothing else reads them",
    "shared.actions.iam.x_edit_policy__mutmut_13": _PLAN_BEFORE,
    "shared.actions.iam.x_edit_policy__mutmut_16": _PLAN_BEFORE,
    "shared.actions.iam.x_edit_policy__mutmut_46": _PLAN_BEFORE,
    "shared.actions.iam.x_edit_policy__mutmut_49": _PLAN_BEFORE,
    "shared.actions.iam.x_edit_policy__mutmut_31": _NO_ETAG,
    "shared.actions.iam.x_edit_policy__mutmut_33": _NO_ETAG,
    "shared.actions.iam.x_edit_policy__mutmut_36": _NO_ETAG,
    "shared.actions.iam.x_edit_policy__mutmut_75": _NO_ETAG,
    "shared.actions.iam.x_edit_policy__mutmut_77": _NO_ETAG,
    "shared.actions.iam.x_edit_policy__mutmut_80": _NO_ETAG,
    **{f"shared.actions.iam.x_with_grants__mutmut_{n}":
       "with_grants' role default for a binding without one: only changed bindings are keyed, and every grant Rampart"
       " adds names a role, so a roleless binding never matches" for n in (56, 58, 61)},
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_4": _FN_VERSION,
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_6": _FN_VERSION,
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_8": _FN_VERSION,
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_10": _FN_VERSION,
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_15": _FN_VERSION,
    "shared.actions.iam.xǁ_FunctionsIamǁget_iam_policy__mutmut_1": _FN_TIMEOUT,
    "shared.actions.iam.xǁ_FunctionsIamǁset_iam_policy__mutmut_1": _FN_TIMEOUT,
    "shared.actions.x__rpc_status__mutmut_6": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_7": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_8": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_12": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_13": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_14": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_15": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_16": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_18": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_22": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_23": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_24": _RPC_FALLBACK,
    "shared.actions.x__rpc_status__mutmut_25": _RPC_FALLBACK,
    "shared.actions.run.x_update_service__mutmut_9":
        "the masked update_service without retry=None: run_v2's UpdateService has no default retry (transports/base.py)",
    "shared.actions.run.x_revert_invoker_check__mutmut_2":
        "invoker_iam_disabled = None instead of False: proto-plus clears a bool field to False, the same value and request",
    "shared.actions.run.x_revert_service__mutmut_11":
        "the compliant plan's writes None instead of []: converge only tests `not p.writes`, and nothing else reads them",
    "shared.actions.run.x_service_facts__mutmut_1":
        "label_key default 'XXXX' instead of '': label keys are lower case (resource-manager/docs/labels-overview), so no"
        " service carries one named XXXX and no label is reported either way",
    **{f"shared.actions.kms.x__parse_time__mutmut_{n}":
       "replacing ' ' by 'T' (or 't') before fromisoformat: Python 3.11's fromisoformat accepts a space, T or t alike"
       for n in (7, 9)},
    **{f"shared.actions.kms.x_version_facts__mutmut_{n}":
       "a maxsplit or index variant on a version name: it holds '/cryptoKeyVersions/' once, and split in two its last"
       " part is the same either way"
       for n in (7, 8, 12, 22, 25, 26)},
    "shared.actions.kms.x_dependents__mutmut_5": "truncated = None instead of False: only tested for truth",
    "shared.actions.kms.x_restore_version__mutmut_114":
        "current = None before the calls: a restore always runs (the state is DESTROY_SCHEDULED) and sets it",
    "shared.actions.kms.x_restore_version__mutmut_116": "attempts = 1 instead of += 1 for the first call: attempts is 0 then",
    "shared.actions.kms.x_version_facts__mutmut_65":
        "scheduled = '' instead of None once restored: both are falsy, and the window is skipped either way",
    **{name: _NO_ETAG for name in ("shared.actions.quarantine.x__etags__mutmut_6", "shared.actions.quarantine.x__etags__mutmut_8",
                                   "shared.actions.quarantine.x__etags__mutmut_11")},
    "shared.actions.quarantine.x__records__mutmut_3": "_records(None) asks getattr(None, 'records', None): None either way",
    "shared.actions.quarantine.x__records__mutmut_8": "getattr(ctx, 'records') without a default: an ActionContext always has it",
    "shared.actions.quarantine.x_quarantine__mutmut_44":
        "the compliant plan's writes None instead of []: converge only tests `not p.writes`, and nothing else reads them",
    "shared.actions.quarantine.x_quarantine__mutmut_113":
        "invoker_iam_disabled = None instead of False: proto-plus clears a bool field to False, the same value and request",
    **{f"shared.actions.quarantine.x_quarantine__mutmut_{n}": _NO_ETAG for n in (226, 228, 231)},
    **{f"shared.actions.quarantine.x_release__mutmut_{n}": _NO_ETAG for n in (154, 156, 159)},
    **{f"shared.actions.run.x_mask_of__mutmut_{n}": "the first part of a split is the same whatever its maxsplit"
       for n in (5, 8)},
    "shared.actions.quarantine.x_quarantine__mutmut_101":
        "a held record's set_ingress is always a closed value (quarantine writes only those; records are digest-checked)",
    "shared.actions.quarantine.x_quarantine__mutmut_186":
        "the written service's facts without the label key: the planned facts (with it) were merged into the same dict first",
    **{f"shared.pipeline.x_evaluate__mutmut_{n}":
       "the per-entry cache of what a kind locates not passed: each rule locates and builds the view again, with the same"
       " result (a cost, not a behaviour)" for n in (2, 10, 13)},
    **{f"shared.rules.xǁRuleǁevaluate__mutmut_{n}":
       "the per-entry cache of what a kind locates: without it each rule locates and builds the view again, with the same"
       " result (a cost, not a behaviour)" for n in (1, 2, 4, 18)},
    "shared.actions.quarantine.x_quarantine__mutmut_184":
        "the written service's facts without the label key: the planned facts (with it) were merged into the same dict first",
    "shared.actions.quarantine.x_release__mutmut_12":
        "drift = None instead of []: the first plan sets `drift = drift or now_drift`, a list either way",
    "shared.actions.quarantine.x_release__mutmut_177": "dry_run=None instead of False: only tested for truth",
    "shared.actions.quarantine.x__quarantine_record__mutmut_77":
        "a compliant re-read after earlier writes plans no change, so its planned facts (after) equal its read facts (before)",
    "shared.actions.x_failed__mutmut_9":
        "failed() drops **extra: no caller passes extra fields",
}

# functions/* (the rule modules), measured on branch h18b.
_EMPTY_PARAMS = "the rule's Params has no fields and its check never reads params, so quarantine's check is the same with None"
_MEMBER_SYNTAX = ("IAM member syntax (cloud.google.com/iam/docs/principal-identifiers): a user, group, service account"
                  " or domain member has one ':' and at most one '@'; only deleted: members have a second ':', and"
                  " _outside leaves them before this line")
EQUIVALENT |= {
    "functions.run_invoker_iam_disabled.x_remediate__mutmut_4": _EMPTY_PARAMS,
    "functions.run_default_service_account.x_remediate__mutmut_4": _EMPTY_PARAMS,
    "functions.kms_key_weakened.x__time__mutmut_10":
        "_time without tzinfo=UTC: check only subtracts two times _time parsed, and the difference of two naive times is the same",
    "functions.run_workload_noncompliant.x_check__mutmut_5":
        "run_default_service_account.check(view, None): that rule's Params has no fields and its check never reads params",
    **{f"functions.run_traffic_revision.x_judge_revision__mutmut_{n}":
       "the revision's to_dict options: shared.views.run reads enum names and numbers, camelCase and snake_case fields"
       " alike (checked for a compliant and a failing revision in tests/test_rule_units.py), so the judgement is the same"
       for n in (5, 6, 8, 9, 11, 12)},
    **{f"functions.run_traffic_revision.x_judge_revision__mutmut_{n}":
       "the 'unreadable' answer is never reached: from_live on a mapping always returns a view (_view_v2 has no None)"
       for n in (20, 21)},
    **{f"functions.armor_policy_detached.x__short__mutmut_{n}":
       "_short's non-string branch: enrich gives it only pick_str's answers, always a str" for n in (2, 4)},
    **{f"functions.rampart_tamper.x_is_rampart__mutmut_{n}":
       "the name's last part another way: every plumbing kind's name is projects|folders|.../ID/COLLECTION/NAME"
       " (shared/views/plumbing.py _KINDS), so rsplit('/') with no limit, limit 2, or index +1 of limit 1 is NAME too"
       for n in (17, 20, 21)},
    **{f"functions.rampart_tamper.x_check__mutmut_{n}":
       "the email after 'serviceAccount:' another way: a service account email has no ':', so every split gives it"
       for n in (22, 23, 25)},
    "functions.kms_key_weakened.x__time__mutmut_8":
        "' ' replaced by 't' instead of 'T': strptime matches the format's literal T case-insensitively (_strptime"
        " compiles with re.IGNORECASE), so the same time is parsed",
    "functions.iam_agent_binding_removed.x_check__mutmut_6":
        "before = {...} for before |= {...}: before is the empty set on the line before, so the set is the same",
    "functions.iam_agent_binding_removed.x_check__mutmut_23":
        "members(role, conditional=None) for conditional=False: members() only tests `conditional or ...`; both are false",
    "functions.iam_outsider_member.x_outsiders_in__mutmut_10":
        "a folder's or organization's trust gets project 'XXXX' instead of none: trust matches a service account's"
        " project by shared/members.py's patterns, lower case and numbers only, so 'XXXX' never matches",
    "functions.iam_outsider_member.x_trust_for__mutmut_3":
        "an empty project added to the trust: shared/members.py's project patterns need 6+ characters or digits, so ''"
        " never matches",
    **{f"functions.org_policy_relaxed.x_remediate__mutmut_{n}":
       "the constraint's default when a finding has none: every finding this rule remediates comes from its check,"
       " which always writes observed['constraint']" for n in (4, 6, 9)},
    "functions.run_plaintext_secrets.x_check__mutmut_26":
        "plain_value or 'XXXX': candidates keep only variables with a plain value, so the fallback is never used",
    "functions.function_default_service_account.x_check__mutmut_3":
        "run_default_service_account.check(view, None): that rule's Params has no fields and its check never reads params",
    "functions.kms_public_member.x_check__mutmut_9":
        "grants(None) for grants(PUBLIC_MEMBERS) without allowed_domains: _outside then flags public members only, and"
        " grants() returns the pairs sorted either way, so the same grants are flagged in the same order",
    "functions.kms_public_member.x_check__mutmut_11":
        "grants(None) for grants(PUBLIC_MEMBERS) without allowed_domains: _outside then flags public members only, and"
        " grants() returns the pairs sorted either way, so the same grants are flagged in the same order",
    "functions.kms_public_member.x__outside__mutmut_12": _MEMBER_SYNTAX,
    "functions.kms_public_member.x__outside__mutmut_29": _MEMBER_SYNTAX,
    "functions.kms_agent_binding_removed.x_check__mutmut_10":
        "expected = {...} for expected |= {...}: expected is the empty set on the line before, so the set is the same",
    "functions.kms_agent_binding_removed.x_check__mutmut_27":
        "members(role, conditional=None) for conditional=False: members() only tests `conditional or ...`; both are false",
    "functions.kms_agent_binding_removed.x_remediate__mutmut_3":
        "Missing(None, ()) for a finding without detail: with no members nothing is restored and the role is never read",
    "functions.kms_version_destroy_scheduled.x__reenable__mutmut_2":
        "the key from the finding's name instead of its view: a KeyVersionView's key is its name up to /cryptoKeyVersions/"
        " (shared/views/kms.py builds both from one kms_name), so the key is the same",
    "functions.kms_version_disabled.x_check__mutmut_21":
        "the finding without its view as detail: nothing reads it (reenable_version and version_facts use finding.resource)",
    "functions.kms_version_disabled.x_check__mutmut_25":
        "the finding without its view as detail: nothing reads it (reenable_version and version_facts use finding.resource)",
}

# shared/views part 1 (hv1): run, functions, plumbing, fields, names, scope.
_RUN_TO_DICT = ("from_live's to_dict with enum numbers (use_integers_for_enums True, or left to proto-plus's default"
                " True) or with None for False: _view_v2 reads each number as its name (INGRESS_INT, EGRESS_INT; traffic"
                " type 1 is LATEST, 0 is unset like TRAFFIC_TARGET_ALLOCATION_TYPE_UNSPECIFIED), so a run_v2.Service"
                " gives the same view (tests/test_views_run_unit.py checks it)")
_TO_DICT = ("{}'s to_dict options (None for False, True, or proto-plus's default True for the one left out): the view"
            " reads enum numbers as their names ({}) and snake_case keys as the camelCase ones (pick tries both), so a"
            " client object gives the same view (tests/test_views_{}_unit.py checks each combination)")
_WORKLOAD_TO_DICT = _TO_DICT.format("workload_from_live", "EGRESS_INT, the only enum a job or worker pool view reads", "run")
_FUNCTION_TO_DICT = _TO_DICT.format("from_live", "INGRESS_INT, CONNECTOR_EGRESS_INT", "functions")
_INGRESS_FALLBACK = ("the v1 ingress fallback None instead of 'all': enum_name(None) is '', which _view_v1 reads as"
                     " INGRESS_TRAFFIC_ALL, as it reads 'all'")
_LAST_PART = "the last part of a split is the same whatever its maxsplit"
EQUIVALENT |= {
    **{f"shared.views.run.x_from_live__mutmut_{n}": _RUN_TO_DICT for n in (4, 5, 7, 10)},
    **{f"shared.views.run.x_workload_from_live__mutmut_{n}": _WORKLOAD_TO_DICT for n in (5, 6, 8, 9, 11, 12)},
    **{f"shared.views.functions.x_from_live__mutmut_{n}": _FUNCTION_TO_DICT for n in (5, 6, 8, 9, 11, 12)},
    "shared.views.run.x_from_entry__mutmut_14": _INGRESS_FALLBACK,
    "shared.views.run.x_from_entry__mutmut_16": _INGRESS_FALLBACK,
    "shared.views.run.x_from_asset__mutmut_96": _INGRESS_FALLBACK,
    **{f"shared.views.run.x__traffic__mutmut_{n}": _LAST_PART for n in (13, 20)},
    **{f"shared.views.plumbing.x_from_entry__mutmut_{n}": _LAST_PART for n in (5, 8)},
    **{f"shared.views.names.x_project_location__mutmut_{n}":
       "split('/') with no limit or a limit of 5 instead of 4: only parts[0] to parts[3], and whether there are at least"
       " 2 or 4 parts, are read, and those are the same for any limit of 4 or more" for n in (5, 8)},
    **{f"shared.views.plumbing.x__name__mutmut_{n}":
       "the third or fourth '' pad of a Cloud Run v1 name: the name starts with 'namespaces/', so it splits into 2 parts"
       " or more and [:4] never reaches those pads" for n in (10, 11)},
    **{f"shared.views.plumbing.x__name__mutmut_{n}":
       "replacing every (or two) 'projects/-/' rather than the first: a name that holds it twice has a '/' in its"
       " account part, so it matches no plumbing kind (projects/P/serviceAccounts/ID) and locate, _name's only caller,"
       " returns None either way" for n in (24, 29)},
}


# shared/views part 2 (hv2): iam, kms, keyposture, orgpolicy, armor, denypolicy.
_TO_DICT_FALSY = ("to_dict's option None instead of False: proto-plus hands it to json_format.MessageToDict, which only"
                  " tests it for truth, so the same JSON")
_TO_DICT_SNAKE = ("the JSON with proto field names (snake_case) instead of camelCase: every reader of it is"
                  " shared.event.pick, which also looks a camelCase key up in its snake_case form (rotation_period,"
                  " destroy_time, version_template, inherit_from_parent, allowed_values, ...), so the same values")
_ORG_NO_ENUMS = ("orgpolicy_v2.Policy has no enum field (Policy, PolicySpec, PolicyRule, StringValues), so to_dict's"
                 " enum option changes nothing")
EQUIVALENT |= {
    "shared.views.iam.x__apply__mutmut_9":
        "the ordered set's value '' instead of None: _apply only reads the dict's keys (the members)",
    **{f"shared.views.kms.x__as_json__mutmut_{n}": _TO_DICT_FALSY for n in (2, 3)},
    **{f"shared.views.kms.x__as_json__mutmut_{n}": _TO_DICT_SNAKE for n in (6, 9)},
    "shared.views.kms.x_duration_seconds__mutmut_7":
        "int(s) also for a seconds object without seconds: int(None) raises TypeError, which the same try catches, so"
        " None either way",
    "shared.views.orgpolicy.x_from_live__mutmut_1":
        "from_live's default name 'XXXX' instead of '': neither is a policy name (_NAME), so _deleted and _v2 give None"
        " for both",
    **{f"shared.views.orgpolicy.x_from_live__mutmut_{n}": _TO_DICT_FALSY for n in (8, 9)},
    **{f"shared.views.orgpolicy.x_from_live__mutmut_{n}": _ORG_NO_ENUMS for n in (11, 14)},
    **{f"shared.views.orgpolicy.x_from_live__mutmut_{n}": _TO_DICT_SNAKE for n in (12, 15)},
    **{f"shared.views.orgpolicy.x_locate__mutmut_{n}":
       "the constraint as the last '/'-part of the policy's name: rsplit('/') with no limit or with limit 2 ends with"
       " the same part" for n in (66, 79)},
    **{f"shared.views.armor.x_from_entry__mutmut_{n}":
       "the method after 'compute.': Compute logs its methods as VERSION.compute.COLLECTION.METHOD"
       " (v1.compute.backendServices.setSecurityPolicy, beta.compute.securityPolicies.patchRule), with 'compute.'"
       " once, so split with no limit or limit 2, or rsplit, ends with the same part" for n in (7, 8, 11)},
}


# pipeline, dedupe, armor re-measure (hpd)
_NOT_A_POLICY_REF = ("fullmatch of 'XXXX' instead of '' for an empty string: neither is a security policy reference"
                     " (the pattern needs projects/.../securityPolicies/NAME), so the match is None either way")
EQUIVALENT |= {
    "shared.pipeline.xǁPipelineǁreport__mutmut_7":
        "the Result report() builds without its event_id: it only collects the deliveries of a record made outside"
        " handle, report() drops it, and nothing reads its event_id",
    **{f"shared.pipeline.xǁPipelineǁwarm_up__mutmut_{n}":
       "a rule id's product by split('_') or split('_', 2) instead of split('_', 1): the first part of a split is the"
       " same whatever its maxsplit" for n in (10, 13)},
    "functions.armor_policy_detached.x_policy_link__mutmut_4": _NOT_A_POLICY_REF,
    **{f"functions.armor_policy_detached.x__same_policy__mutmut_{n}": _NOT_A_POLICY_REF for n in (4, 7)},
    **{f"functions.armor_policy_detached.x_prior_policy__mutmut_{n}":
       "the method's part after 'compute.' by split without a limit, split limit 2 or rsplit: a Compute method name"
       " (v1|beta|alpha.compute.RESOURCE.METHOD) holds 'compute.' once, and a method without it is whole either way,"
       " so the same last part is compared with SET_POLICY" for n in (14, 15, 18)},
    **{f"functions.armor_policy_detached.x_remediate__mutmut_{n}":
       "the undo command's backend name another way: remediate gets this far only for a resource matching _BACKEND_REF"
       " (projects/P/{global|regions/R}/backendServices/NAME), so rsplit('/') with no limit, limit 2, or index +1 of"
       " limit 1 is NAME too" for n in (226, 229, 230)},
    **{name: "to_dict() of a snapshot whatever it exists: google-cloud-firestore's DocumentSnapshot.to_dict() returns"
             " None for a document that does not exist, the same None" for name in (
        "shared.alerts.dedupe.xǁFirestoreStoreǁ_apply__mutmut_17", "shared.alerts.dedupe.xǁFirestoreStoreǁget__mutmut_9")},
    **{f"shared.alerts.dedupe.xǁFirestoreStoreǁ_apply__mutmut_{n}":
       "zip(..., strict=None) or without strict for strict=False: zip's default is not strict, and None is false"
       for n in (31, 35)},
    "shared.alerts.dedupe.xǁFirestoreStoreǁ_apply__mutmut_38":
        "break for continue after a document with nothing to write: the claim comes first, and no transition returns"
        " a window to write without a claim to write (whenever begin_transition returns no claim document it returns"
        " no window either; progress, finish and release write one document), so nothing after it is skipped",
    "shared.alerts.dedupe.xǁFirestoreStoreǁ_call_options__mutmut_8":
        "Retry without multiplier=2.0: google.api_core.retry's default multiplier is 2.0 (_DEFAULT_DELAY_MULTIPLIER)",
}


# shared/event.py and shared/config.py (hec)
_CLOSE_MATCH = ("difflib.get_close_matches' n or cutoff left to its default (n=3, cutoff=0.6) or n=2: only near[0] is"
                " read, the best match whatever n (heapq.nlargest), and 0.6 is the default cutoff")
_PARAMS_FROZEN = ("the params model not frozen: its instance never escapes _resolve/_section_errors, which copy it with"
                  " dict(validated) into the rule's frozen Params dataclass; nothing assigns to it")
_ERRORS_ARGS = ("ValidationError.errors() with include_url/include_input at their defaults or include_url=True: the"
                " defaults are include_input=True, and _format_errors never reads the 'url' key")
_NO_ENV = ("RAMPART_POLICY_CHECK_SECONDS unset read as None or 'XXXX' instead of '': None is false and float('XXXX')"
           " raises ValueError, so the default interval is returned either way")
_NEVER_EMPTY_DIGEST = ("a digest field set to '' instead of None: it is only compared with a SHA-256 hex digest or"
                       " 'unreadable:<path>', never ''")
_PINNED_DIGEST = ("the pinned store's digest: _reload reads it, and a pinned store never reloads (its next check is at"
                  " +inf, which time.monotonic() never reaches)")
_LISTED_FOLDER = ("policy.folders.get(f) default: _resolve refuses an exemption naming a folder not listed under"
                  " `folders:` (ConfigError), and every caller passes settings of the same LoadedPolicy, so f is a key")
_TYPE_FAST_PATH = ("`type(x) is dict/str` is a fast path before isinstance(x, Mapping/str), which answers the same"
                   " for a dict or str; skipping it changes only the cost")
_STATUS_MESSAGE = "status.get('message') default None instead of '': a non-string message becomes '' either way"
EQUIVALENT |= {
    **{f"shared.config.x__unknown_rule__mutmut_{n}": _CLOSE_MATCH for n in (8, 9, 10)},
    **{f"shared.config.x__params_model__mutmut_{n}": _PARAMS_FROZEN for n in (22, 24, 27)},
    **{f"shared.config.x__resolve__mutmut_{n}":
       "getattr(destroy.params, 'allow_disable', default): kms_version_destroy_scheduled's Params always has the field"
       " (default None), so the default is never used" for n in (95, 98)},
    "shared.config.x__resolve__mutmut_113":
        "alerts = '' before the try: either the alerts model validates and sets it, or an error is added and"
        " ConfigError is raised, so the initial value never reaches the LoadedPolicy",
    **{f"shared.config.x__format_errors__mutmut_{n}": _ERRORS_ARGS for n in (5, 6, 7)},
    "shared.config.x_load_policy__mutmut_6": "encoding 'UTF-8' for 'utf-8': codec names are case-insensitive",
    **{f"shared.config.x__check_seconds__mutmut_{n}": _NO_ENV for n in (3, 5, 8)},
    "shared.config.xǁPolicyStoreǁ__init____mutmut_11": _NEVER_EMPTY_DIGEST,
    "shared.config.xǁPolicyStoreǁ_reload__mutmut_58": _NEVER_EMPTY_DIGEST,
    "shared.config.xǁPolicyStoreǁ__init____mutmut_15":
        "the first check at 1.0 instead of 0.0: before any load both of current()'s interval checks find neither a"
        " policy nor an error and fall through to the load, so the first call loads either way",
    "shared.config.xǁPolicyStoreǁ_reload__mutmut_59":
        "_error = '' after a good load: _error is read only while no policy is in force, and after a good load one"
        " always is (nothing sets _current back to None)",
    **{f"shared.config.xǁPolicyStoreǁset__mutmut_{n}": _PINNED_DIGEST for n in (2, 3, 4)},
    "shared.config.xǁPolicyStoreǁset__mutmut_12": "float('INF') is float('inf')",
    **{f"shared.config.x_exemption_for__mutmut_{n}": _LISTED_FOLDER for n in (18, 20)},
    "shared.event.x__b64_json__mutmut_6":
        "the base64 limit 4/3 with true division (699054.67 instead of 699054): for a whole number of characters,"
        " len > 699054.67 and len > 699054 are the same test",
    "shared.event.x__delegation__mutmut_11":
        "who = None instead of '' before the branches: a link no branch names stays falsy, and is '(unnamed)' either way",
    "shared.event.x__dict__mutmut_3": _TYPE_FAST_PATH,
    "shared.event.x__str__mutmut_4": _TYPE_FAST_PATH,
    "shared.event.x_pick_dict__mutmut_8": _TYPE_FAST_PATH,
    "shared.event.x__from_entry__mutmut_2": _TYPE_FAST_PATH,
    "shared.event.x__from_entry__mutmut_19": _TYPE_FAST_PATH,
    "shared.event.x__from_entry__mutmut_102": _STATUS_MESSAGE,
    "shared.event.x__from_entry__mutmut_104": _STATUS_MESSAGE,
    "shared.event.x__from_entry__mutmut_320":
        "project = None before the resource name is read: a None or empty project always takes the label/log-name"
        " branch, which assigns a string, so the initial value never reaches the event",
    "shared.event.x__from_entry__mutmut_349":
        "location = None before the resource name is read: a None or empty location always takes the fallback"
        " branch, which assigns a string, so the initial value never reaches the event",
    "shared.event.x_from_cloudevent__mutmut_4":
        "ce_type = None instead of '' for a CloudEvent without a type: both are false for the '(no type)' reason and"
        " not a str, so unwrap gets '' either way",
    **{f"shared.event.x__snake__mutmut_{n}":
       "_snake's cache not read (or filled with None): the name is converted again, to the same snake_case name;"
       " a cost, not a behaviour" for n in (1, 2, 11)},
    "shared.event.x_pick__mutmut_3": _TYPE_FAST_PATH,
    "shared.event.x_unwrap__mutmut_9": _TYPE_FAST_PATH,
    "shared.event.x_unwrap__mutmut_72": _TYPE_FAST_PATH,
    "shared.event.x__from_entry__mutmut_389":
        "str(ts) also for a string timestamp: str() of a str is the same text, and numbers took that branch already",
}


DEFINITIONS = {
    "killed": "a test failed with the mutant in place",
    "timeout": "the tests ran over 15x their usual time with the mutant (an infinite loop, say): counted as killed",
    "survived": "every test covering the mutated function passed with the mutant in place",
    "no_tests": "no test of the selection calls the mutated function: a survivor nothing would notice",
    "equivalent": "a survivor that changes nothing observable; its reason is under `equivalent`",
    "killed_percent": "(killed + timeout) / mutants, over the measured modules only",
    "explained_percent": "(killed + timeout + equivalent) / mutants, over the measured modules only",
    "stale": "measured at a commit where the module's code differs from the commit the results were merged at: not in the figure",
    "not_measured": "a core module (setup.cfg only_mutate) with no complete measurement: not in the figure",
    "nothing_to_mutate": "a core module mutmut makes no mutant of (imports only): not counted as a core module",
}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def core_modules() -> list[str]:
    """The core's source files: setup.cfg's [mutmut] only_mutate patterns, expanded."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = cfg["mutmut"]["only_mutate"].split()
    return sorted({p.relative_to(ROOT).as_posix() for pat in patterns for p in ROOT.glob(pat) if p.suffix == ".py"})


def changed_since(commit: str, path: str) -> bool:
    """Whether `path` differs between `commit` and the working tree (a file gone counts as changed)."""
    if not (ROOT / path).exists():
        return True
    return _git("diff", "--quiet", commit, "--", path).returncode != 0


def run_mutmut(children: int, only: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *only], cwd=ROOT).returncode


def measured(commit: str, tests_dirty: bool) -> dict[str, dict[str, Any]]:
    """Every module mutants/ holds a verdict for each of whose mutants, as a results entry.
    A module with some mutants never run (a run stopped, or restricted to other functions) is
    left out: half a module is no measure of it."""
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        raise FileNotFoundError(f"no mutmut results under {MUTANTS}: run `make mutate` first")
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries: dict[str, dict[str, Any]] = {}
    for meta in metas:
        module = meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        verdicts = {k: STATUS.get(code, "suspicious") for k, code in codes.items()}
        if "not_checked" in verdicts.values():
            continue  # a module with no mutants at all (nothing to mutate) is measured, trivially
        equivalent = {k: EQUIVALENT[k] for k, v in sorted(verdicts.items()) if v in NOT_KILLED and k in EQUIVALENT}
        counts = Counter("equivalent" if k in equivalent else v for k, v in verdicts.items())
        entries[module] = {
            "commit": commit,
            "date": now,
            "module_uncommitted_changes": bool(_git("status", "--porcelain", "--", module).stdout.strip()),
            "tests_uncommitted_changes": tests_dirty,
            "mutants": len(verdicts),
            "counts": dict(sorted(counts.items())),
            "survivors": sorted(k for k, v in verdicts.items() if v in NOT_KILLED and k not in equivalent),
            "equivalent": equivalent,
        }
    return entries


def merge(earlier: dict[str, Any], fresh: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The results file after this run: fresh modules replace their earlier entries; an earlier
    entry whose module changed since its commit, or that was measured with uncommitted changes,
    is marked stale; core modules with no entry are listed as not measured."""
    commit = _git("rev-parse", "--short", "HEAD").stdout.strip()
    core = core_modules()
    modules: dict[str, dict[str, Any]] = {}
    for module, entry in earlier.get("modules", {}).items():
        if module not in core or "commit" not in entry:
            continue  # gone from the core, or from the format before per-module commits
        entry = dict(entry)
        entry["stale"] = entry["module_uncommitted_changes"] or changed_since(entry["commit"], module)
        modules[module] = entry
    for module, entry in fresh.items():
        if module in core:
            modules[module] = entry | {"stale": entry["module_uncommitted_changes"]}
    current = {m: e for m, e in sorted(modules.items()) if not e["stale"] and e["mutants"]}
    empty = sorted(m for m, e in modules.items() if not e["mutants"])  # e.g. an __init__.py of imports only
    totals: Counter[str] = Counter()
    for e in current.values():
        totals.update(e["counts"])
    total = sum(totals.values())
    killed = sum(totals[k] for k in KILLED)
    return {
        "command": "make mutate (mutmut over the core, module by module; settings in setup.cfg; merged by bench/mutate.py)",
        "tool": f"mutmut {_version()}",
        "merged_at": {"commit": commit, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
        # For bench.provenance: the oldest commit any counted module was measured at (the
        # figure describes that code or newer), and whether any counted module was dirty.
        "provenance": {"commit": provenance.oldest([e["commit"] for e in current.values()]) or commit,
                       "core_uncommitted_changes": any(e["module_uncommitted_changes"] for e in current.values())},
        "scope": {"core_modules": len(core) - len(empty), "measured": sorted(current),
                  "stale": sorted(m for m, e in modules.items() if e["stale"] and e["mutants"]),
                  "not_measured": sorted(m for m in core if m not in modules),
                  "nothing_to_mutate": empty},
        "totals": dict(sorted(totals.items())),
        "mutants": total,
        "killed_percent": round(100 * killed / total, 1) if total else None,
        "explained_percent": round(100 * (killed + totals["equivalent"]) / total, 1) if total else None,
        "definitions": DEFINITIONS,
        "modules": dict(sorted(modules.items())),
    }


def newest(*results: dict[str, Any]) -> dict[str, Any]:
    """One results file's worth of module entries from several: each module's most recent
    measurement (by its date; on a tie, the later file's). merge() then marks the stale ones."""
    modules: dict[str, dict[str, Any]] = {}
    for data in results:
        for module, entry in data.get("modules", {}).items():
            if module not in modules or entry.get("date", "") >= modules[module].get("date", ""):
                modules[module] = entry
    return {"modules": modules}


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def summary(data: dict[str, Any]) -> str:
    t, scope = data["totals"], data["scope"]
    if not data["mutants"]:
        return "no module measured"
    return (f"{data['killed_percent']}% of {data['mutants']:,} mutants killed in the {len(scope['measured'])} of "
            f"{scope['core_modules']} core modules measured ({t.get('killed', 0):,} killed, {t.get('timeout', 0):,} timed out, "
            f"{t.get('survived', 0):,} survived, {t.get('no_tests', 0):,} reached by no test, "
            f"{t.get('equivalent', 0):,} explained as equivalent); killed or explained: {data['explained_percent']}%")


def render(data: dict[str, Any]) -> str:
    """The README's mutation block (tests/test_readme.py checks the README carries exactly this)."""
    scope = data["scope"]
    rows = [f"`make mutate` ({data['tool']}), merged at commit {data['merged_at']['commit']}: **{summary(data)}**. "
            "Only the modules in the table without \"stale\" count; each was measured at the commit beside it.", "",
            "| module | commit | mutants | killed | survived | reached by no test | equivalent | killed % |",
            "|---|---|---|---|---|---|---|---|"]
    for module, e in data["modules"].items():
        c, n = e["counts"], e["mutants"]
        if not n:
            continue
        killed = sum(c.get(k, 0) for k in KILLED)
        commit = e["commit"] + (" (stale)" if e["stale"] else "")
        rows.append(f"| `{module}` | {commit} | {n:,} | {killed:,} | {c.get('survived', 0):,} | {c.get('no_tests', 0):,} "
                    f"| {c.get('equivalent', 0):,} | {100 * killed / n:.1f} |")
    if scope["not_measured"]:
        rows += ["", f"Not measured ({len(scope['not_measured'])} of {scope['core_modules']} core modules, not in the figure): "
                 + ", ".join(f"`{m}`" for m in scope["not_measured"]) + "."]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collect", action="store_true", help="only merge what the last runs left in mutants/")
    p.add_argument("--only", nargs="+", default=[], metavar="GLOB",
                   help='run only the mutants whose mutmut names match, e.g. "shared.actions.engine.*"')
    p.add_argument("--max-children", type=int, default=2)
    p.add_argument("--readme", action="store_true", help="print the README's mutation block from the results file")
    p.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                   help="take in the module entries of results files written elsewhere (other clones measuring"
                        " other modules at once): for each module the most recent measurement wins")
    a = p.parse_args(argv)
    if a.readme:
        sys.stdout.write(render(json.loads(RESULTS.read_text())))
        return 0
    if a.merge:
        earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        data = merge(newest(earlier, *(json.loads(Path(f).read_text()) for f in a.merge)), {})
        RESULTS.write_text(json.dumps(data, indent=2) + "\n")
        print(summary(data))
        return 0
    if not a.collect:
        rc = run_mutmut(a.max_children, a.only)
        if rc not in (0, 1):  # mutmut exits 1 when a mutant survived
            print(f"mutmut run failed ({rc})", file=sys.stderr)
            return rc
    commit = _git("rev-parse", "--short", "HEAD").stdout.strip()
    tests_dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "tests").stdout.strip())
    earlier = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data = merge(earlier, measured(commit, tests_dirty))
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(summary(data))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
