"""shared/views/scope.py: which resource a policy is on, with hand-written expected answers."""

from __future__ import annotations

from shared.views import scope


def test_scope_of_names_each_kind_of_policy_holder() -> None:
    assert scope.scope_of("projects/p1") == "project"
    assert scope.scope_of("folders/123") == "folder"
    assert scope.scope_of("organizations/456") == "organization"
    assert scope.scope_of("projects/p1/locations/us/keyRings/r") == "kms.keyRing"
