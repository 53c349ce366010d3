"""The stand-in's Cloud Asset Inventory v1 routes, checked against Google's discovery document
(`cloudasset.v1.json` in google-api-python-client) and driven through the real google-cloud-asset client."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import googleapiclient
import pytest

from infra.local.estate import estate
from infra.local.standin.cloudasset_v1 import API, ASSET_TYPES, IAM_ASSET_TYPES, MAX_PAGE

FUNCTION = "projects/proj-00003/locations/us-east1/functions/fn"
DOC = json.loads((Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / API.discovery).read_text())
METHODS = DOC["resources"]["v1"]["methods"]
SCHEMAS = DOC["schemas"]


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def check_shape(obj: Any, schema_name: str, path: str = "") -> None:
    """Every field of `obj` exists in the discovery schema, with the documented JSON type."""
    props = SCHEMAS[schema_name]["properties"]
    for key, value in obj.items():
        assert key in props, f"{path}{key}: not a field of {schema_name}"
        spec = props[key]
        if "$ref" in spec:
            assert isinstance(value, dict), f"{path}{key}: expected an object"
            check_shape(value, spec["$ref"], f"{path}{key}.")
        elif spec.get("type") == "array":
            assert isinstance(value, list), f"{path}{key}: expected an array"
            item = spec["items"]
            for i, v in enumerate(value):
                if "$ref" in item:
                    check_shape(v, item["$ref"], f"{path}{key}[{i}].")
                else:
                    assert isinstance(v, str), f"{path}{key}[{i}]: expected {item.get('type')}"
        elif spec.get("type") == "string":
            assert isinstance(value, str), f"{path}{key}: expected a string, found {type(value).__name__}"
        elif spec.get("type") == "object":
            assert isinstance(value, dict), f"{path}{key}: expected an object"
        elif spec.get("type") == "integer":
            assert isinstance(value, int), f"{path}{key}: expected an integer"


@pytest.fixture
def seeded(standin: Any) -> Any:
    seed, _ = estate(projects=6, services=30, keys=12, folders=2, violation_rate=0.0)
    seed["functions"] = [{"name": FUNCTION, "serviceConfig": {"ingressSettings": "ALLOW_ALL"}, "kmsKeyName": seed["cryptoKeys"][0]["name"],
                          "buildConfig": {"runtime": "python312"}}]
    seed["orgPolicies"] = [{"name": "projects/proj-00001/policies/run.allowedIngress", "spec": {"rules": [{"allowAll": True}]}},
                           {"name": "folders/2001/policies/gcp.resourceLocations",
                            "spec": {"rules": [{"values": {"allowedValues": ["in:us-locations"]}}]}},
                           {"name": "organizations/1000/policies/iam.allowedPolicyMemberDomains", "spec": {"rules": [{"enforce": True}]}}]
    seed["policies"] = {seed["services"][0]["name"]: {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]},
                        seed["cryptoKeys"][0]["name"]: {"bindings": [{"role": "roles/cloudkms.admin",
                                                                      "members": ["group:kms@example.com"]}]},
                        FUNCTION: {"bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}]},
                        "projects/proj-00002": {"bindings": [{"role": "roles/viewer", "members": ["user:x@gmail.com"]}]},
                        "folders/2001": {"bindings": [{"role": "roles/viewer", "members": ["group:f@example.com"]}]},
                        "organizations/1000": {"bindings": [{"role": "roles/viewer", "members": ["group:o@example.com"]}]}}
    standin.admin.seed(seed)
    return standin


def test_routes_are_the_documented_methods() -> None:
    by_id = {m["id"]: m for m in METHODS.values()}
    for route in API.routes:
        m = by_id[route.discovery_id]
        assert m["httpMethod"] == route.method
        assert m["flatPath"] == route.flat_path()
        assert "/" + m["path"].replace("{+scope}", "{scope=*/*}") == route.template
        assert {"scope", "assetTypes", "pageSize", "pageToken", "query"} <= set(m["parameters"])
    assert {r.discovery_id for r in API.routes} == {"cloudasset.searchAllResources", "cloudasset.searchAllIamPolicies"}


def test_resource_results_have_the_documented_shape(seeded: Any) -> None:
    status, body = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?readMask=*&pageSize=500")
    assert status == 200
    check_shape(body, "SearchAllResourcesResponse")
    kinds = {r["assetType"] for r in body["results"]}
    assert kinds == set(ASSET_TYPES)
    svc = next(r for r in body["results"] if r["assetType"] == "run.googleapis.com/Service")
    assert svc["name"].startswith("//run.googleapis.com/projects/proj-")
    assert svc["project"].split("/")[1].isdigit()  # a number, as Asset Inventory returns it
    assert svc["versionedResources"][0]["resource"]["name"] == svc["name"][len("//run.googleapis.com/"):]


def test_iam_results_have_the_documented_shape(seeded: Any) -> None:
    status, body = get(f"{seeded.url}/v1/organizations/1000:searchAllIamPolicies")
    assert status == 200
    check_shape(body, "SearchAllIamPoliciesResponse")
    assert {r["assetType"] for r in body["results"]} == set(IAM_ASSET_TYPES) - {"cloudkms.googleapis.com/KeyRing",
                                                                                  "cloudkms.googleapis.com/CryptoKeyVersion"}
    by_resource = {r["resource"]: r for r in body["results"]}
    # The search APIs name a project by its id; `project` only for what is in a project.
    project = by_resource["//cloudresourcemanager.googleapis.com/projects/proj-00002"]
    assert project["assetType"] == "cloudresourcemanager.googleapis.com/Project" and project["project"].split("/")[1].isdigit()
    folder = by_resource["//cloudresourcemanager.googleapis.com/folders/2001"]
    assert "project" not in folder and folder["organization"] == "organizations/1000"
    org = by_resource["//cloudresourcemanager.googleapis.com/organizations/1000"]
    assert "project" not in org and org["policy"]["bindings"][0]["members"] == ["group:o@example.com"]
    assert by_resource[f"//cloudfunctions.googleapis.com/{FUNCTION}"]["assetType"] == "cloudfunctions.googleapis.com/Function"


def test_hierarchy_policies_are_in_the_scope_of_themselves_and_what_is_above(seeded: Any) -> None:
    def resources(scope: str, kind: str = "searchAllIamPolicies") -> set[str]:
        _, body = get(f"{seeded.url}/v1/{scope}:{kind}?pageSize=500")
        return {r.get("resource") or r["name"] for r in body.get("results", [])}

    crm = "//cloudresourcemanager.googleapis.com/"
    assert {crm + "folders/2001", crm + "organizations/1000"} <= resources("organizations/1000")
    assert crm + "folders/2001" in resources("folders/2001") and crm + "organizations/1000" not in resources("folders/2001")
    assert crm + "folders/2001" not in resources("folders/2000")
    assert resources("projects/proj-00002") == {crm + "projects/proj-00002"}
    policies = "//orgpolicy.googleapis.com/"
    assert resources("folders/2001", "searchAllResources") >= {policies + "folders/2001/policies/gcp.resourceLocations",
                                                                 policies + "projects/proj-00001/policies/run.allowedIngress"}
    assert policies + "organizations/1000/policies/iam.allowedPolicyMemberDomains" not in resources("folders/2001", "searchAllResources")


def test_function_and_org_policy_records(seeded: Any) -> None:
    _, body = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?readMask=*&pageSize=500"
                  "&assetTypes=cloudfunctions.googleapis.com/Function,orgpolicy.googleapis.com/Policy")
    by_name = {r["name"]: r for r in body["results"]}
    fn = by_name[f"//cloudfunctions.googleapis.com/{FUNCTION}"]
    assert fn["location"] == "us-east1" and fn["state"] == "ACTIVE" and fn["updateTime"]
    assert fn["versionedResources"] == [{"version": "v2", "resource": fn["versionedResources"][0]["resource"]}]
    assert fn["versionedResources"][0]["resource"]["serviceConfig"]["ingressSettings"] == "ALLOW_ALL"
    assert fn["kmsKeys"] and fn["parentAssetType"] == "cloudresourcemanager.googleapis.com/Project"
    org = by_name["//orgpolicy.googleapis.com/organizations/1000/policies/iam.allowedPolicyMemberDomains"]
    assert org["location"] == "global" and "project" not in org and org["organization"] == "organizations/1000"
    assert org["parentFullResourceName"] == "//cloudresourcemanager.googleapis.com/organizations/1000"
    assert org["updateTime"] == org["versionedResources"][0]["resource"]["spec"]["updateTime"]
    on_project = by_name["//orgpolicy.googleapis.com/projects/proj-00001/policies/run.allowedIngress"]
    assert on_project["project"].split("/")[1].isdigit() and on_project["parentAssetType"] == "cloudresourcemanager.googleapis.com/Project"


def test_versioned_resources_only_when_the_read_mask_asks(seeded: Any) -> None:
    _, plain = get(f"{seeded.url}/v1/projects/proj-00001:searchAllResources")
    assert plain["results"] and all("versionedResources" not in r for r in plain["results"])
    _, masked = get(f"{seeded.url}/v1/projects/proj-00001:searchAllResources?readMask=name,versionedResources")
    assert all(set(r) == {"name", "versionedResources"} for r in masked["results"])
    status, err = get(f"{seeded.url}/v1/projects/proj-00001:searchAllResources?readMask=name,bogus")
    assert status == 400 and err["error"]["status"] == "INVALID_ARGUMENT"


def test_scopes_select_by_project_id_number_folder_and_organization(seeded: Any) -> None:
    def names(scope: str) -> set[str]:
        _, body = get(f"{seeded.url}/v1/{scope}:searchAllResources?pageSize=500")
        return {r["name"] for r in body.get("results", [])}

    _, one = get(f"{seeded.url}/v1/projects/proj-00002:searchAllResources?pageSize=1")
    number = one["results"][0]["project"].split("/")[1]
    by_id, by_number = names("projects/proj-00002"), names(f"projects/{number}")
    assert by_id and by_id == by_number and all("/proj-00002/" in n for n in by_id)
    folder0, folder1 = names("folders/2000"), names("folders/2001")
    assert folder0 and folder1 and not folder0 & folder1
    org = names("organizations/1000")
    assert folder0 | folder1 == {n for n in org if "/organizations/1000/" not in n}  # all but what is on the organization
    assert org - folder0 - folder1 == {"//orgpolicy.googleapis.com/organizations/1000/policies/iam.allowedPolicyMemberDomains"}
    assert names("organizations/999") == set()


def test_pages_through_everything_once_with_the_page_size_capped(seeded: Any) -> None:
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        _, body = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?pageSize=7&pageToken={token}")
        pages += 1
        assert len(body["results"]) <= 7
        seen += [r["name"] for r in body["results"]]
        token = body.get("nextPageToken", "")
        if not token:
            break
    assert len(seen) == len(set(seen)) and pages == -(-len(seen) // 7)
    _, big = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?pageSize=100000")
    assert len(big["results"]) == min(len(seen), MAX_PAGE)
    status, _ = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?pageToken=garbage!")
    assert status == 400


def test_a_query_the_stand_in_cannot_honour_is_refused(seeded: Any) -> None:
    status, body = get(f"{seeded.url}/v1/organizations/1000:searchAllResources?query=state:ACTIVE")
    assert status == 400 and "query" in body["error"]["message"]


def test_the_real_client_pages_and_filters_asset_types(seeded: Any) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import asset_v1

    client = asset_v1.AssetServiceClient(transport="rest", credentials=AnonymousCredentials(),
                                         client_options=ClientOptions(api_endpoint=seeded.url))
    req = asset_v1.SearchAllResourcesRequest(scope="organizations/1000", page_size=5,
                                             asset_types=["cloudkms.googleapis.com/KeyRing", "run.googleapis.com/Service"])
    results = list(client.search_all_resources(request=req))
    assert {r.asset_type for r in results} == {"cloudkms.googleapis.com/KeyRing", "run.googleapis.com/Service"}
    assert sum(r.asset_type == "run.googleapis.com/Service" for r in results) == 30
    iam = list(client.search_all_iam_policies(request={"scope": "projects/proj-00000"}))
    assert [b.members for r in iam for b in r.policy.bindings if b.role == "roles/run.invoker"] == [["allUsers"]]


def test_nested_folders_are_walked_up_to_the_organization(standin: Any) -> None:
    standin.admin.seed({
        "organizations": [{"name": "organizations/77"}],
        "folders": [{"name": "folders/1", "parent": "organizations/77"}, {"name": "folders/2", "parent": "folders/1"}],
        "projects": [{"name": "projects/deep-project", "projectId": "deep-project", "parent": "folders/2"}],
        "keyRings": [{"name": "projects/deep-project/locations/us-central1/keyRings/r"}],
    })
    for scope in ("folders/2", "folders/1", "organizations/77", "projects/deep-project"):
        _, body = get(f"{standin.url}/v1/{scope}:searchAllResources")
        [result] = body["results"]
        assert result["folders"] == ["folders/2", "folders/1"] and result["organization"] == "organizations/77"
    _, other = get(f"{standin.url}/v1/folders/3:searchAllResources")
    assert other == {}
