"""The IAM permissions each kind of action needs, named once so rules and the custom role agree.

Updating a Cloud Run service re-attaches its service identity, which needs
`iam.serviceAccounts.actAs` on that service account ("certain operations, like creating or
updating a service or revision, require the deployer account to have permissions on the
service identity resource": Cloud Run docs, Configure service identity).
"""

from __future__ import annotations

RUN_UPDATE: tuple[str, ...] = (
    "run.services.get",
    "run.services.update",
    "run.operations.get",
    "iam.serviceAccounts.actAs",
)
RUN_IAM: tuple[str, ...] = ("run.services.getIamPolicy", "run.services.setIamPolicy")
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
