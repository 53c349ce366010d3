"""The IAM permissions each kind of action needs, named once so rules and the custom roles agree.

`iam.serviceAccounts.actAs` only where an update really needs it. Updating a Cloud Run service
re-attaches its service identity, which needs actAs on that service account ("certain
operations, like creating or updating a service or revision, require the deployer account to
have permissions on the service identity resource": Cloud Run docs, Configure service identity),
and that holds for an update that changes no revision too: a replaceService that only moved
traffic was refused "Permission 'iam.serviceaccounts.actAs' denied" (GoogleCloudPlatform/
cloud-run-release-manager#81). So an ingress or invoker-check revert (services.update) keeps it;
an IAM-only revert (services.setIamPolicy, a method on the IAM policy, attaching no identity)
does not, and neither does any KMS action.

Identities (`identity_permissions`): the permissions split so that the identity that reads
untrusted input holds no write permission at all, and each writer holds only its product's:
  detect   reads live state and confirms entries: every .get/.getIamPolicy/.list the enabled
           rules' actions use, and logging.logEntries.list;
  act-run  the Cloud Run writes of the enabled rules (and the reads they re-check with);
  act-kms  the Cloud KMS writes of the enabled rules (and the KMS reads), bound under a condition
           on KMS resource types. A KMS restore confirms its entry in Cloud Logging first, and
           logging.logEntries.list is checked on the project, outside that condition: the KMS
           writer gets it from a second, unconditioned role holding only LOGGING_READ.
"""

from __future__ import annotations

RUN_UPDATE: tuple[str, ...] = (
    "run.services.get",
    "run.services.update",
    "run.operations.get",
    "iam.serviceAccounts.actAs",
)
RUN_IAM: tuple[str, ...] = ("run.services.getIamPolicy", "run.services.setIamPolicy")
RUN_WORKLOAD_IAM: tuple[str, ...] = ("run.jobs.getIamPolicy", "run.jobs.setIamPolicy",
                                     "run.workerPools.getIamPolicy", "run.workerPools.setIamPolicy")
RUN_QUARANTINE: tuple[str, ...] = RUN_UPDATE + RUN_IAM
KMS_IAM: tuple[str, ...] = (
    "cloudkms.cryptoKeys.getIamPolicy",
    "cloudkms.cryptoKeys.setIamPolicy",
    "cloudkms.keyRings.getIamPolicy",
    "cloudkms.keyRings.setIamPolicy",
)
FUNCTION_UPDATE: tuple[str, ...] = (
    "cloudfunctions.functions.get",
    "cloudfunctions.functions.update",
    "cloudfunctions.operations.get",
    "iam.serviceAccounts.actAs",  # an update redeploys the function's Cloud Run service as its runtime identity
)
FUNCTION_IAM: tuple[str, ...] = ("cloudfunctions.functions.getIamPolicy", "cloudfunctions.functions.setIamPolicy")
PROJECT_IAM: tuple[str, ...] = ("resourcemanager.projects.getIamPolicy", "resourcemanager.projects.setIamPolicy")

LOGGING_READ: tuple[str, ...] = ("logging.logEntries.list",)
IDENTITIES: tuple[str, ...] = ("detect", "act-run", "act-kms")
_READ_SUFFIXES = (".get", ".getIamPolicy", ".list")

# IAM Conditions resource attributes are recognised by Cloud KMS (resource types
# cloudkms.googleapis.com/KeyRing, CryptoKey, CryptoKeyVersion) but not by Cloud Run, which is not
# on the list ("other services and resource types do not recognize resource attributes":
# cloud.google.com/iam/docs/conditions-resource-attributes). So only the KMS writer's binding at
# an organization or folder is narrowed by a condition.
KMS_RESOURCE_CONDITION = (
    'resource.service == "cloudkms.googleapis.com" && ('
    'resource.type == "cloudkms.googleapis.com/KeyRing" || '
    'resource.type == "cloudkms.googleapis.com/CryptoKey" || '
    'resource.type == "cloudkms.googleapis.com/CryptoKeyVersion")'
)
CONDITIONS: dict[str, str | None] = {"detect": None, "act-run": None, "act-kms": KMS_RESOURCE_CONDITION}


def identity_permissions(perms: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """Split the permissions the enabled rules need among Rampart's identities."""
    reads = sorted({p for p in perms if p.endswith(_READ_SUFFIXES)} | set(LOGGING_READ))
    # act-run writes everything that is not KMS (Cloud Run, and the function, project IAM and
    # guardrail fixes that came with them); act-kms writes KMS only, under its condition.
    run = sorted(p for p in perms if not p.startswith("cloudkms.") and p not in LOGGING_READ)
    kms = sorted(p for p in perms if p.startswith("cloudkms."))
    return {"detect": reads, "act-run": run if any(not p.endswith(_READ_SUFFIXES) for p in run) else [],
            "act-kms": kms if any(p.startswith("cloudkms.") and not p.endswith(_READ_SUFFIXES) for p in kms) else []}
