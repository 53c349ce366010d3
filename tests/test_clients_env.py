"""The clients' requests sessions settle once what `requests` would look up in the environment on
every call, and only when that cannot depend on the URL (shared/clients.py, `trust_env`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import clients

BUNDLE = "/etc/ssl/corp.pem"


@pytest.mark.parametrize("env", [
    {"HTTPS_PROXY": "http://10.0.0.1:3128"},
    {"http_proxy": "http://10.0.0.1:3128"},
    {"no_proxy": "metadata.google.internal"},
    {"NETRC": "/nonexistent/netrc"},  # requests looks it up even if the file is missing: keep its default
])
def test_a_setting_that_depends_on_the_url_stays_requests_to_apply(env: dict[str, str], tmp_path: Path) -> None:
    assert clients.requests_environment({"PATH": "/usr/bin", **env}, home=str(tmp_path)) == (False, None)


def test_a_netrc_file_stays_requests_to_apply(tmp_path: Path) -> None:
    (tmp_path / ".netrc").write_text("machine example.com login a password b\n")
    assert clients.requests_environment({"PATH": "/usr/bin"}, home=str(tmp_path)) == (False, None)


@pytest.mark.parametrize(("env", "bundle"), [
    ({}, None),
    ({"HTTPS_PROXY": "", "REQUESTS_CA_BUNDLE": "", "PROXY_MODE": "on"}, None),  # empty or unrelated: nothing
    ({"REQUESTS_CA_BUNDLE": BUNDLE, "CURL_CA_BUNDLE": "/other.pem"}, BUNDLE),  # requests' own precedence
    ({"CURL_CA_BUNDLE": BUNDLE}, BUNDLE),
])
def test_otherwise_only_the_ca_bundle_is_taken(env: dict[str, str], bundle: str | None, tmp_path: Path) -> None:
    assert clients.requests_environment({"PATH": "/usr/bin", **env}, home=str(tmp_path)) == (True, bundle)


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    for k in list(os.environ):
        if k.lower().endswith("_proxy") or k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NETRC"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))
    for env in (clients.RUN_ENDPOINT_ENV, clients.KMS_ENDPOINT_ENV, clients.FUNCTIONS_ENDPOINT_ENV):
        monkeypatch.setenv(env, "http://127.0.0.1:9")  # built, never called
    clients.reset()
    yield monkeypatch
    clients.reset()


def test_real_clients_in_a_bare_environment_skip_the_look_ups(bare_env: pytest.MonkeyPatch) -> None:
    for session in (clients.run_services().transport._session, clients.kms().transport._session,
                    clients.functions_rest()[0]):
        assert (session.trust_env, session.verify) == (False, True)


def test_real_clients_take_the_ca_bundle_once(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("REQUESTS_CA_BUNDLE", BUNDLE)
    session = clients.run_services().transport._session
    assert (session.trust_env, session.verify) == (False, BUNDLE)


def test_real_clients_behind_a_proxy_keep_requests_default(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    bare_env.setenv("REQUESTS_CA_BUNDLE", BUNDLE)
    for session in (clients.run_services().transport._session, clients.functions_rest()[0]):
        assert (session.trust_env, session.verify) == (True, True)


def test_requests_sends_alike_either_way(tmp_path: Path) -> None:
    """The settings requests merges into a call are the same with the look-ups as settled once."""
    import requests

    env = {"REQUESTS_CA_BUNDLE": BUNDLE}
    looked_up = requests.Session()
    settled = requests.Session()
    fixed, bundle = clients.requests_environment(env, home=str(tmp_path))
    assert fixed
    settled.verify, settled.trust_env = bundle, False
    saved = {k: os.environ.get(k) for k in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    try:
        os.environ["REQUESTS_CA_BUNDLE"] = BUNDLE
        os.environ.pop("CURL_CA_BUNDLE", None)
        a = looked_up.merge_environment_settings("https://run.googleapis.com/v2/x", {}, None, None, None)
        b = settled.merge_environment_settings("https://run.googleapis.com/v2/x", {}, None, None, None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert a == b == {"proxies": {}, "stream": False, "verify": BUNDLE, "cert": None}
