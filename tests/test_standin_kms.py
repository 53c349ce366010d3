"""The Cloud KMS API v1 stand-in, driven through the real kms_v1.KeyManagementServiceClient (REST)
and, once, through the gcloud CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from google.api_core import exceptions as gexc
from google.cloud import kms_v1
from google.iam.v1 import policy_pb2
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from infra.local.standin import cloudkms_v1
from shared import clients
from tests.support.fixtures_standin import Standin, proto_enum_paths

pytestmark = pytest.mark.integration

LOCATION = "projects/demo-project/locations/us-central1"
RING = f"{LOCATION}/keyRings/demo-ring"
KEY = f"{RING}/cryptoKeys/phi-key"
V1 = f"{KEY}/cryptoKeyVersions/1"
AGENT = "serviceAccount:service-123456789012@gcp-sa-financialservices.iam.gserviceaccount.com"
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState


@pytest.fixture
def kms(standin: Standin) -> kms_v1.KeyManagementServiceClient:
    standin.seed_example()
    return clients.kms()


def _set_state(kms: kms_v1.KeyManagementServiceClient, state: State) -> kms_v1.CryptoKeyVersion:
    return kms.update_crypto_key_version(
        crypto_key_version=kms_v1.CryptoKeyVersion(name=V1, state=state),
        update_mask=field_mask_pb2.FieldMask(paths=["state"]),
    )


def _rpc_status(exc: gexc.GoogleAPICallError) -> str:
    return exc.response.json()["error"]["status"]


def test_get_version_and_key_reflect_the_seed(kms: kms_v1.KeyManagementServiceClient) -> None:
    version = kms.get_crypto_key_version(name=V1)
    assert version.state == State.ENABLED
    assert version.algorithm == kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.GOOGLE_SYMMETRIC_ENCRYPTION
    key = kms.get_crypto_key(name=KEY)
    assert key.primary.name == V1 and key.primary.state == State.ENABLED
    assert key.destroy_scheduled_duration == timedelta(days=1)
    assert key.rotation_period == timedelta(days=90)
    assert kms.get_key_ring(name=RING).name == RING


def test_disable_then_enable_with_an_update_mask(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    assert _set_state(kms, State.DISABLED).state == State.DISABLED
    assert kms.get_crypto_key(name=KEY).primary.state == State.DISABLED  # primary is live
    assert _set_state(kms, State.ENABLED).state == State.ENABLED
    patches = standin.admin.requests(method="PATCH")
    assert [("updateMask=state" in p["query"], json.loads(p["body"])) for p in patches] == [
        (True, {"state": 2}), (True, {"state": 1}),
    ]


def test_update_without_a_mask_is_rejected(kms: kms_v1.KeyManagementServiceClient) -> None:
    with pytest.raises(gexc.BadRequest, match="update_mask"):
        kms.update_crypto_key_version(crypto_key_version=kms_v1.CryptoKeyVersion(name=V1, state=State.DISABLED))
    assert kms.get_crypto_key_version(name=V1).state == State.ENABLED


def test_destroy_schedules_and_restore_disables(kms: kms_v1.KeyManagementServiceClient) -> None:
    destroyed = kms.destroy_crypto_key_version(name=V1)
    assert destroyed.state == State.DESTROY_SCHEDULED
    # destroyTime = now + the key's destroyScheduledDuration (86400s in the seed).
    assert abs(destroyed.destroy_time.timestamp() - (time.time() + 86400)) < 60

    restored = kms.restore_crypto_key_version(name=V1)
    assert restored.state == State.DISABLED
    assert not kms_v1.CryptoKeyVersion.pb(restored).HasField("destroy_time")
    assert kms.get_crypto_key_version(name=V1).state == State.DISABLED


def test_default_destroy_window_is_thirty_days(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    standin.admin.seed({"cryptoKeys": [{"name": f"{RING}/cryptoKeys/plain"}],
                        "cryptoKeyVersions": [{"name": f"{RING}/cryptoKeys/plain/cryptoKeyVersions/1"}]})
    destroyed = kms.destroy_crypto_key_version(name=f"{RING}/cryptoKeys/plain/cryptoKeyVersions/1")
    assert abs(destroyed.destroy_time.timestamp() - (time.time() + 30 * 86400)) < 60


def test_illegal_state_transitions_fail(kms: kms_v1.KeyManagementServiceClient) -> None:
    with pytest.raises(gexc.BadRequest) as not_scheduled:
        kms.restore_crypto_key_version(name=V1)
    assert _rpc_status(not_scheduled.value) == "FAILED_PRECONDITION"

    with pytest.raises(gexc.BadRequest) as to_destroyed:
        _set_state(kms, State.DESTROYED)
    assert _rpc_status(to_destroyed.value) == "INVALID_ARGUMENT"

    kms.destroy_crypto_key_version(name=V1)
    with pytest.raises(gexc.BadRequest) as from_scheduled:
        _set_state(kms, State.ENABLED)
    assert _rpc_status(from_scheduled.value) == "FAILED_PRECONDITION"
    with pytest.raises(gexc.BadRequest) as twice:
        kms.destroy_crypto_key_version(name=V1)
    assert _rpc_status(twice.value) == "FAILED_PRECONDITION"


def test_version_is_destroyed_once_the_window_passes(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    scheduled = kms.destroy_crypto_key_version(name=V1)
    standin.admin.advance_clock(86400 + 1)
    version = kms.get_crypto_key_version(name=V1)
    assert version.state == State.DESTROYED
    assert version.destroy_event_time == scheduled.destroy_time
    with pytest.raises(gexc.BadRequest, match="DESTROYED"):
        kms.restore_crypto_key_version(name=V1)
    assert kms.get_crypto_key(name=KEY).primary.state == State.DESTROYED


def test_rotation_schedule_updates_with_a_mask(kms: kms_v1.KeyManagementServiceClient) -> None:
    next_time = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400)
    key = kms_v1.CryptoKey(name=KEY, rotation_period=duration_pb2.Duration(seconds=30 * 86400),
                           next_rotation_time=next_time)
    mask = field_mask_pb2.FieldMask(paths=["rotation_period", "next_rotation_time"])
    updated = kms.update_crypto_key(crypto_key=key, update_mask=mask)
    assert updated.rotation_period == timedelta(days=30)
    assert kms.get_crypto_key(name=KEY).next_rotation_time.timestamp() == next_time.seconds

    key.rotation_period = duration_pb2.Duration(seconds=3600)
    with pytest.raises(gexc.BadRequest, match="rotation_period"):
        kms.update_crypto_key(crypto_key=key, update_mask=mask)
    with pytest.raises(gexc.BadRequest, match="cannot be updated"):
        kms.update_crypto_key(crypto_key=key, update_mask=field_mask_pb2.FieldMask(paths=["purpose"]))


@pytest.mark.parametrize("resource", [KEY, RING], ids=["crypto-key", "key-ring"])
def test_iam_on_keys_and_key_rings_uses_etags(
    kms: kms_v1.KeyManagementServiceClient, resource: str
) -> None:
    request = {"resource": resource, "options": {"requested_policy_version": 3}}
    policy = kms.get_iam_policy(request=request)
    stale = policy_pb2.Policy()
    stale.CopyFrom(policy)

    policy.bindings.add(role="roles/cloudkms.viewer", members=["group:auditors@example.com"])
    written = kms.set_iam_policy(request={"resource": resource, "policy": policy})
    assert written.etag != policy.etag
    assert kms.get_iam_policy(request=request) == written

    with pytest.raises(gexc.Conflict) as err:
        kms.set_iam_policy(request={"resource": resource, "policy": stale})
    assert _rpc_status(err.value) == "ABORTED"


def test_removed_agent_binding_shows_after_a_concurrent_writer(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    assert AGENT in kms.get_iam_policy(request={"resource": KEY}).bindings[0].members
    standin.admin.mutate(KEY, iam_remove={"role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                                          "member": AGENT})
    assert AGENT not in kms.get_iam_policy(request={"resource": KEY}).bindings[0].members


def test_default_retry_absorbs_one_unavailable(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    # KMS destroy/restore/update/get retry UNAVAILABLE by default (0.1 s first backoff), so a
    # single 503 never reaches the caller; the request log shows both attempts.
    standin.admin.fault("POST", r":destroy$", status=503, count=1)
    assert kms.destroy_crypto_key_version(name=V1).state == State.DESTROY_SCHEDULED
    assert [r["status"] for r in standin.admin.requests(method="POST")] == [503, 200]


def test_lists_walk_rings_keys_and_versions(
    kms: kms_v1.KeyManagementServiceClient, standin: Standin
) -> None:
    created = kms.create_crypto_key_version(parent=KEY, crypto_key_version=kms_v1.CryptoKeyVersion())
    assert created.name == f"{KEY}/cryptoKeyVersions/2" and created.state == State.ENABLED
    assert [r.name for r in kms.list_key_rings(parent=LOCATION)] == [RING]
    assert [k.name for k in kms.list_crypto_keys(parent=RING)] == [KEY]
    versions = kms.list_crypto_key_versions(request={"parent": KEY, "page_size": 1})
    assert [v.name for v in versions] == [V1, created.name]
    enabled = kms.list_crypto_key_versions(request={"parent": KEY, "filter": "state=ENABLED"})
    assert len(list(enabled)) == 2


def test_missing_version_is_not_found(kms: kms_v1.KeyManagementServiceClient) -> None:
    with pytest.raises(gexc.NotFound):
        kms.get_crypto_key_version(name=f"{KEY}/cryptoKeyVersions/9")


def test_enum_tables_match_the_installed_protos() -> None:
    assert proto_enum_paths(kms_v1.CryptoKeyVersion.pb().DESCRIPTOR) == cloudkms_v1.KMS_VERSION_ENUMS
    assert proto_enum_paths(kms_v1.CryptoKey.pb().DESCRIPTOR) == cloudkms_v1.KMS_KEY_ENUMS


def test_gcloud_cli_reads_and_writes_through_the_stand_in(standin: Standin, tmp_path: Path) -> None:
    standin.seed_example()
    gcloud = shutil.which("gcloud")
    assert gcloud, "the gcloud CLI is part of the local stack (see shared/notes/local-stack.md)"
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # throwaway: never the user's configuration
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS": f"{standin.url}/",
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true",
    }
    where = ["--key", "phi-key", "--keyring", "demo-ring", "--location", "us-central1",
             "--project", "demo-project", "--format=json"]

    def gcloud_json(*args: str) -> dict[str, object]:
        proc = subprocess.run([gcloud, *args, *where], env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert gcloud_json("kms", "keys", "versions", "describe", "1")["state"] == "ENABLED"
    assert gcloud_json("kms", "keys", "versions", "disable", "1")["state"] == "DISABLED"
    assert clients.kms().get_crypto_key_version(name=V1).state == State.DISABLED
