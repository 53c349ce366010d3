"""The security team's policy file: per-rule modes, severities, parameters and exemptions.

`config/policy.yaml` by default; `RAMPART_POLICY` points elsewhere. Validated with pydantic
(unknown keys and bad values are errors naming the file, the key path and what was
expected). `PolicyStore.current()` re-reads the file when it changes, so a new policy takes
effect on the next event; an invalid new file is rejected loudly and the last good one stays.

pydantic and PyYAML load only when a policy is first needed: never for an irrelevant event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import threading
import time
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from shared.alerts.config import AlertsConfig

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

import functions
from shared import log
from shared.model import Action, Mode, Severity

DEFAULT_POLICY = Path(__file__).resolve().parent.parent / "config" / "policy.yaml"
HIPAA_REGIONS = ("us-central1", "us-east1", "us-east4", "us-west1", "us-west2")


class ConfigError(ValueError):
    """A policy file that cannot be used; the message lists every problem, one per line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Exemption(_Strict):
    """A resource the rule must leave alone, until `expires`, on someone's authority."""

    resources: tuple[str, ...] = ()  # shell patterns on the full resource name
    projects: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()  # folders/NUMBER; projects under it come from `folders:` at the top
    owner: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    expires: dt.date

    @model_validator(mode="after")
    def _names_something(self) -> Exemption:
        if not (self.resources or self.projects or self.folders):
            raise ValueError("an exemption must name resources, projects or folders")
        return self


class RuleConfig(_Strict):
    mode: Mode | None = None  # None: the policy's default_mode
    severity: Severity | None = None
    action: Action | None = None  # None: the rule's own enforce action
    params: dict[str, Any] = Field(default_factory=dict)
    exemptions: tuple[Exemption, ...] = ()


class CircuitBreakerConfig(_Strict):
    """Stop reverting a resource the same rule remediated this often within the window (0: never stop)."""

    max_remediations: int = Field(default=3, ge=0, le=1000)
    window_seconds: float = Field(default=3600, gt=0, le=7 * 86400)


class RemediationConfig(_Strict):
    max_attempts: int = Field(default=3, ge=1, le=10)  # per write, on an etag conflict
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    project_writes_per_minute: int = Field(default=1000, ge=0, le=100_000)  # per instance; 0: no limit
    operation_timeout_seconds: float = Field(default=60, gt=0, le=600)
    quarantine_label: str = Field(default="rampart-quarantine", pattern=r"^[a-z][a-z0-9_-]{0,62}$")


class SweepConfig(_Strict):
    """The posture sweep (shared/sweep): where it looks, how fast, and how strongly it may act."""

    # Never act more strongly than this, whatever a rule's mode: old violations can be many, and
    # reverting a hundred long-public services at once can break production. `enforce` is a choice.
    max_mode: Mode = Mode.DRY_RUN
    scopes: tuple[str, ...] = ()  # projects/ID, folders/N, organizations/N (`scan --scope` overrides)
    qps: float = Field(default=2.0, gt=0, le=6.0)  # Asset Inventory calls/s per API per process (quota: 400/min)
    page_size: int = Field(default=500, ge=1, le=500)  # results per page = resources per shard
    workers: int = Field(default=2, ge=1, le=32)  # threads evaluating shards in `scan`
    topic: str = Field(default="", pattern=r"^(projects/[a-z][-a-z0-9]+/topics/[A-Za-z][-A-Za-z0-9_.~+%]+)?$")  # for shards
    progress_collection: str = Field(default="rampart_sweeps", pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from shared.sweep.lister import check_scope

        for scope in v:
            check_scope(scope)
        return v


def _alerts_model() -> Any:
    from shared.alerts.config import AlertsConfig

    return AlertsConfig


class Policy(_Strict):
    version: Literal[1] = 1
    default_mode: Mode = Mode.ENFORCE
    approved_regions: tuple[str, ...] = HIPAA_REGIONS
    # Who counts as an insider in IAM policies: user/group/domain members of these domains, and
    # service accounts of these projects. Consumer accounts (gmail.com) never do.
    trusted_domains: tuple[str, ...] = ()
    trusted_projects: tuple[str, ...] = ()
    ignore_principals: tuple[str, ...] = ()  # shell patterns on principalEmail
    folders: dict[str, tuple[str, ...]] = Field(default_factory=dict)  # folders/N → project ids
    rules: dict[str, RuleConfig] = Field(default_factory=dict)
    remediation: RemediationConfig = RemediationConfig()
    alerts: dict[str, Any] = Field(default_factory=dict)
    sweep: SweepConfig = SweepConfig()

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, v: dict[str, RuleConfig]) -> dict[str, RuleConfig]:
        unknown = sorted(set(v) - set(functions.RULE_IDS))
        if unknown:
            raise ValueError("; ".join(_unknown_rule(u) for u in unknown))
        return v

    @field_validator("ignore_principals")
    @classmethod
    def _pinned_principals(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from shared.principals import pattern_problem

        problems = [p for p in map(pattern_problem, v) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return v

    @field_validator("folders")
    @classmethod
    def _folder_names(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        bad = [k for k in v if not k.startswith("folders/")]
        if bad:
            raise ValueError(f"expected keys like folders/123456789, found {bad[0]!r}")
        return v


def _unknown_rule(rule_id: str) -> str:
    import difflib

    near = difflib.get_close_matches(rule_id, functions.RULE_IDS, n=1, cutoff=0.6)
    name = repr(rule_id if len(rule_id) <= 60 else rule_id[:57] + "...")
    hint = f"did you mean {near[0]!r}?" if near else "`python main.py rules` lists them"
    return f"unknown rule {name}: {hint}"


@dataclasses.dataclass(frozen=True)
class RuleSettings:
    """A rule's effective settings under a policy: everything the decision needs."""

    rule_id: str
    mode: Mode
    severity: Severity
    action: Action
    params: Any  # the rule's Params dataclass instance
    exemptions: tuple[Exemption, ...]


@dataclasses.dataclass(frozen=True)
class LoadedPolicy:
    """A validated policy with every rule's settings resolved, and where it came from."""

    policy: Policy
    source: str
    rules: Mapping[str, RuleSettings]
    alerts: AlertsConfig | None
    warnings: tuple[str, ...]

    def settings(self, rule_id: str) -> RuleSettings:
        return self.rules[rule_id]

    def enabled(self) -> tuple[str, ...]:
        return tuple(i for i, s in self.rules.items() if s.mode is not Mode.OFF)


# ---------------------------------------------------------------------------
# Rule parameters: each rule's Params dataclass, validated strictly.

_param_models: dict[str, type[BaseModel]] = {}


def _params_model(rule_id: str) -> type[BaseModel]:
    m = _param_models.get(rule_id)
    if m is None:
        params_cls = functions.rule(rule_id).params
        hints = typing.get_type_hints(params_cls)
        fields: dict[str, Any] = {}
        for f in dataclasses.fields(params_cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
            fields[f.name] = (hints[f.name], default)
        m = create_model(f"{rule_id}.params", __config__=ConfigDict(extra="forbid", frozen=True), **fields)
        _param_models[rule_id] = m
    return m


def date_today() -> dt.date:
    """The date exemptions are judged against, at each decision (so one expires at midnight with no
    reload). One place, so tests can move it."""
    return dt.date.today()


def _resolve(policy: Policy, source: str) -> LoadedPolicy:
    errors: list[str] = []
    warnings: list[str] = []
    today = date_today()
    rules: dict[str, RuleSettings] = {}
    for rule_id in functions.RULE_IDS:
        rule = functions.rule(rule_id)
        rc = policy.rules.get(rule_id, RuleConfig())
        try:
            validated = _params_model(rule_id).model_validate(rc.params)
        except ValidationError as exc:
            errors.extend(_format_errors(exc, f"rules.{rule_id}.params"))
            continue
        values = dict(validated)
        regex_errors = _regex_errors(rule_id, values)
        if regex_errors:
            errors.extend(regex_errors)
            continue
        if "approved_regions" in values and values["approved_regions"] is None:
            values["approved_regions"] = policy.approved_regions
        for key in ("trusted_domains", "trusted_projects"):  # None: the policy's top-level list
            if key in values and values[key] is None:
                values[key] = getattr(policy, key)
        action = rc.action or rule.action
        if action not in rule.actions:
            allowed = ", ".join(a.value for a in rule.actions)
            errors.append(f"rules.{rule_id}.action: expected one of {allowed}; found {action.value!r}")
            continue
        for n, ex in enumerate(rc.exemptions):
            if ex.expires < today:
                warnings.append(
                    f"rules.{rule_id}.exemptions[{n}] (owner {ex.owner}) expired on {ex.expires}: no longer applies"
                )
            for f in ex.folders:
                if f not in policy.folders:
                    errors.append(
                        f"rules.{rule_id}.exemptions[{n}].folders: {f} is not listed under the top-level `folders:`"
                        " (audit entries do not name a project's folder; list its projects there)"
                    )
        rules[rule_id] = RuleSettings(
            rule_id=rule_id,
            mode=rc.mode or policy.default_mode,
            severity=rc.severity or rule.severity,
            action=action,
            params=rule.params(**values),
            exemptions=rc.exemptions,
        )
    # The destroy rule re-enables a restored version only where kms_version_disabled would have
    # it enabled: it reads that rule's allow_disable unless its own params name one.
    destroy, disabled = rules.get("kms_version_destroy_scheduled"), rules.get("kms_version_disabled")
    if destroy is not None and disabled is not None and getattr(destroy.params, "allow_disable", ()) is None:
        rules["kms_version_destroy_scheduled"] = dataclasses.replace(
            destroy, params=dataclasses.replace(destroy.params, allow_disable=disabled.params.allow_disable))
    alerts = None
    try:
        alerts = _alerts_model().model_validate(policy.alerts)
    except ValidationError as exc:
        errors.extend(_format_errors(exc, "alerts"))
    if not policy.trusted_domains:
        warnings.append(
            "trusted_domains is empty: every user, group and domain member in an IAM policy is an outsider"
            " to the outsider rules; list your organization's domains"
        )
    if errors:
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors))
    return LoadedPolicy(policy=policy, source=source, rules=rules, alerts=alerts, warnings=tuple(warnings))


def _regex_errors(rule_id: str, values: Mapping[str, Any]) -> list[str]:
    """Every regular-expression param of the rule compiled with RE2 (what evaluates them)."""
    import importlib

    from shared.patterns import problems

    names = getattr(importlib.import_module(f"functions.{rule_id}"), "REGEX_PARAMS", ())
    return [p for n in names for p in problems(tuple(values.get(n) or ()), f"rules.{rule_id}.params.{n}")]


def _format_errors(exc: ValidationError, prefix: str = "") -> list[str]:
    from shared.policy_yaml import shown

    out = []
    for e in exc.errors(include_url=False, include_input=True):
        path = ".".join(str(p) for p in e["loc"])
        path = f"{prefix}.{path}" if prefix and path else (prefix or path or "(top level)")
        found = e.get("input")
        if e["type"] == "missing":
            out.append(f"{path}: required, missing")
        elif e["type"] == "extra_forbidden":
            # Never the value: under a misspelled key it may be the secret the right key would hide.
            out.append(f"{path}: unknown key (check the spelling against the policy reference in README.md)")
        elif isinstance(found, bool) and path.split(".")[-1] in ("mode", "default_mode"):
            word, key = ("off" if found is False else "on"), path.split(".")[-1]
            out.append(f"{path}: YAML reads an unquoted {word} (or no/yes, false/true) as {str(found).lower()}:"
                       f' quote it, e.g. {key}: "{word}"')
        else:
            # A validator's own message may quote the input: under a secret-like key, only its kind.
            msg = f"invalid value ({e['type']})" if secret_path(path) else e["msg"].removeprefix("Value error, ")
            if e["type"] == "value_error" and isinstance(found, dict | list):
                out.append(f"{path}: {msg}")
            else:
                out.append(f"{path}: {msg}; found {shown(found, path)}")
    return out


def secret_path(path: str) -> bool:
    from shared.policy_yaml import secret_path as is_secret

    return is_secret(path)


def parse_policy(text: str, source: str = "<policy>") -> LoadedPolicy:
    """Validate policy YAML text; raise ConfigError listing every problem in the file at once.

    No message shows a value under a secret-like key, or the repr of a large value."""
    from shared.policy_yaml import PolicyYAMLError, load

    try:
        data = load(text)
    except PolicyYAMLError as exc:
        raise ConfigError("\n".join(f"{source}: {p}" for p in exc.problems)) from None
    if data is None:
        # An empty or comments-only file is a mistake (a truncated upload, a bad merge), not
        # "every default": refuse it, and the last good policy stays in force.
        raise ConfigError(f"{source}: empty policy: the file has no settings (write at least `version: 1`)")
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(data).__name__}")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = _format_errors(exc)
        errors += [e for e in _section_errors(data) if e not in errors]
        raise ConfigError("\n".join(f"{source}: {e}" for e in errors)) from None
    return _resolve(policy, source)


def _section_errors(data: dict[str, Any]) -> list[str]:
    """What `_resolve` would also say about the rules' params and the alerts (checked there only
    on a policy whose top level is valid), so one pass reports every error in the file."""
    out: list[str] = []
    rules = data.get("rules")
    if isinstance(rules, dict):
        for rule_id, rc in rules.items():
            params = rc.get("params") if isinstance(rc, dict) else None
            if rule_id not in functions.RULE_IDS or not isinstance(params, dict):
                continue
            try:
                validated = _params_model(rule_id).model_validate(params)
            except ValidationError as exc:
                out.extend(_format_errors(exc, f"rules.{rule_id}.params"))
                continue
            out.extend(_regex_errors(rule_id, dict(validated)))
    alerts = data.get("alerts")
    if isinstance(alerts, dict):
        try:
            _alerts_model().model_validate(alerts)
        except ValidationError as exc:
            out.extend(_format_errors(exc, "alerts"))
    return out


def load_policy(path: str | os.PathLike[str]) -> LoadedPolicy:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: policy file not found (set RAMPART_POLICY or create config/policy.yaml)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the policy file: {exc.__class__.__name__}") from None
    return parse_policy(text, str(p))


def policy_path() -> Path:
    return Path(os.environ.get("RAMPART_POLICY") or DEFAULT_POLICY)


# How often, at most, the policy file is re-read. On Cloud Run the file is a Secret Manager
# secret mounted as a volume, and every read fetches the latest version from Secret Manager
# (run/docs/configuring/services/secrets), so reading it per event would cost a Secret Manager
# access per event; stat() says nothing there (the mount's size and mtime need not change).
DEFAULT_CHECK_SECONDS = 3.0


def _check_seconds() -> float:
    raw = os.environ.get("RAMPART_POLICY_CHECK_SECONDS", "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_CHECK_SECONDS
    except ValueError:
        return DEFAULT_CHECK_SECONDS


class PolicyStore:
    """The policy in force, re-read when its file's content changes (judged by a digest of the
    bytes, so a same-size edit in the same second counts), at most once every `check_seconds`;
    the last good policy survives a bad edit."""

    def __init__(self, path: str | os.PathLike[str] | None = None, check_seconds: float | None = None) -> None:
        self._path = Path(path) if path else None
        self._lock = threading.Lock()
        self._check_seconds = _check_seconds() if check_seconds is None else check_seconds
        self._current: LoadedPolicy | None = None
        self._digest: str | None = None  # of the bytes the policy in force was parsed from
        self._rejected: str | None = None  # digest of the last file refused
        self._error: ConfigError | None = None  # why, while no good policy was ever loaded
        self._next_check = 0.0

    @property
    def path(self) -> Path:
        return self._path or policy_path()

    def current(self) -> LoadedPolicy:
        """The policy in force now. Raises ConfigError only when no good policy was ever loaded."""
        now = time.monotonic()
        if now < self._next_check:
            if self._current is not None:
                return self._current
            if self._error is not None:
                raise self._error
        with self._lock:
            if time.monotonic() < self._next_check:
                if self._current is not None:
                    return self._current
                if self._error is not None:
                    raise self._error
            self._next_check = time.monotonic() + self._check_seconds
            return self._reload()

    def _reload(self) -> LoadedPolicy:
        path = self.path
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError:
            digest = f"unreadable:{path}"
        if digest == self._digest and self._current is not None:
            return self._current
        if digest == self._rejected and self._current is not None:
            return self._current
        try:
            # The loader reads the file again (one parse path for every caller). Should it change in
            # between, the next check sees a new digest and loads again: it converges.
            loaded = load_policy(path)
        except ConfigError as exc:
            self._rejected = digest
            if self._current is None:
                self._error = exc
                log.error("rampart.policy_invalid", reason=str(exc), action="refusing to act until fixed")
                raise
            log.error(
                "rampart.policy_rejected",
                reason=str(exc),
                in_force=self._current.source,
                action="keeping the last good policy",
            )
            return self._current
        for w in loaded.warnings:
            log.warning("rampart.policy_warning", detail=w)
        if self._current is not None:
            log.info("rampart.policy_reloaded", source=loaded.source, digest=digest[:12])
        self._current = loaded
        self._digest = digest
        self._rejected = None
        self._error = None
        return loaded

    def set(self, loaded: LoadedPolicy) -> None:
        """Pin a policy (tests, replay with --policy)."""
        with self._lock:
            self._current = loaded
            self._digest = "<pinned>"
            self._path = Path("/nonexistent/<pinned>")
            self._next_check = float("inf")


def exemption_for(
    loaded: LoadedPolicy, settings: RuleSettings, resource: str, project: str, today: dt.date | None = None
) -> tuple[Exemption | None, list[Exemption]]:
    """The exemption that covers `resource` today, and those that would have but expired."""
    from shared.rules import matches_any

    today = today or date_today()
    live: Exemption | None = None
    expired: list[Exemption] = []
    for ex in settings.exemptions:
        covers = (
            (ex.resources and matches_any(resource, ex.resources))
            or (project and project in ex.projects)
            or any(project in loaded.policy.folders.get(f, ()) for f in ex.folders)
        )
        if not covers:
            continue
        if ex.expires >= today:
            live = live or ex
        else:
            expired.append(ex)
    return live, expired
