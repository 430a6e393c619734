"""The routing policy: pydantic models of `policy.yaml`, loading, and per-region resolution.

`load_policy()` reads the packaged `policy.yaml` (or a given path) and validates it; any problem
raises `PolicyError` naming the file and the offending fields. `Policy.rules_for(vr, unit)` gives
the rules in force in a region: the base rules, then the police unit override, then the safety
region override.
"""

from __future__ import annotations

from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from backend.routing.errors import PolicyError

Priority = Literal["P1", "P2", "P3", "P4"]
PRIORITIES: tuple[Priority, ...] = get_args(Priority)
RecipientKind = Literal[
    "police_unit",
    "vt_desk",
    "desk_supervisor",
    "three_ro",
    "case_director",
    "victim_device",
    "contact",
]
RECIPIENT_KINDS: tuple[str, ...] = get_args(RecipientKind)
# Roles an alert type may name as its recipients (the victim's device is set with `victim`).
RecipientRole = Literal["police_unit", "vt_desk", "three_ro", "case_director"]
VictimFeedback = Literal["ack", "warn"]
StepAction = Literal["notify", "re_notify", "escalate", "re_alert"]
StepTarget = Literal["primary", "desk_supervisor", "police_unit", "vt_desk", "case_director"]
PartnerOrganisation = Literal["police", "veilig_thuis", "vrouwenopvang", "three_ro", "om"]

# The alert types of DESIGN.md section 5: every policy must route all of them.
REQUIRED_ALERT_TYPES = (
    "panic",
    "fall",
    "zone_breach",
    "proximity",
    "approach",
    "tamper",
    "device_silent",
    "battery_low",
    "no_fix",
    "test",
)
TEST_TYPE = "test"
# A victim's own alarm is protected alike in every region: P1, to the police unit and the desk.
VICTIM_ALARMS = ("panic", "fall")
REGION_KEY_PATTERN = r"^(VR\d{2}|RE\d{2})$"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertTypeRule(_Strict):
    priority: Priority
    recipients: Annotated[tuple[RecipientRole, ...], Field(min_length=1)]
    victim: VictimFeedback | None = None

    @field_validator("recipients")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("recipients must not repeat")
        return value


class AlertTypeOverride(_Strict):
    """Changes only the fields given."""

    priority: Priority | None = None
    recipients: Annotated[tuple[RecipientRole, ...], Field(min_length=1)] | None = None
    victim: VictimFeedback | None = None

    def apply(self, rule: AlertTypeRule) -> AlertTypeRule:
        return AlertTypeRule.model_validate(rule.model_dump() | self.model_dump(exclude_none=True))


class StepConfig(_Strict):
    after_s: Annotated[int, Field(ge=0)]
    action: Literal["notify", "re_notify", "escalate"]
    target: StepTarget


class EscalationChain(_Strict):
    steps: Annotated[tuple[StepConfig, ...], Field(min_length=1)]
    realert_unresolved_after_s: Annotated[int, Field(gt=0)] | None = None
    realert_target: StepTarget = "primary"

    @model_validator(mode="after")
    def _ordered(self) -> EscalationChain:
        first = self.steps[0]
        if (first.after_s, first.action, first.target) != (0, "notify", "primary"):
            raise ValueError("the first step must be {after_s: 0, action: notify, target: primary}")
        times = [step.after_s for step in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be ordered by after_s")
        return self


MAX_TIGHTENING = timedelta(days=366)


class CustodyReleaseConfig(_Strict):
    tightening_period: timedelta
    priority_steps_up: Annotated[int, Field(ge=0, le=3)] = 1
    notify_contacts: tuple[PartnerOrganisation, ...] = ()
    report_interval_s: Annotated[int, Field(gt=0)]

    @field_validator("tightening_period")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= MAX_TIGHTENING:
            raise ValueError(f"tightening_period must be positive and at most "
                             f"{MAX_TIGHTENING.days} days")
        return value


class ExerciseConfig(_Strict):
    endpoints: dict[RecipientKind, Annotated[str, Field(min_length=1)]]

    @field_validator("endpoints")
    @classmethod
    def _every_kind(cls, value: dict[str, str]) -> dict[str, str]:
        missing = [kind for kind in RECIPIENT_KINDS if kind not in value]
        if missing:
            raise ValueError(f"exercise endpoints missing for {missing}")
        return value


class RegionOverride(_Strict):
    alert_types: dict[str, AlertTypeOverride] = {}
    escalation: dict[Priority, EscalationChain] = {}
    also_notify_home_region: bool | None = None


class RegionRules(_Strict):
    """The rules in force in one region (base rules with the region's overrides applied)."""

    alert_types: dict[str, AlertTypeRule]
    escalation: dict[Priority, EscalationChain]
    also_notify_home_region: bool

    @model_validator(mode="after")
    def _complete(self) -> RegionRules:
        missing = [t for t in REQUIRED_ALERT_TYPES if t not in self.alert_types]
        if missing:
            raise ValueError(f"alert types without a rule: {missing}")
        missing_chains = [p for p in PRIORITIES if p not in self.escalation]
        if missing_chains:
            raise ValueError(f"priorities without an escalation chain: {missing_chains}")
        test = self.alert_types[TEST_TYPE]
        if test.priority != "P4" or test.recipients != ("vt_desk",) or test.victim is not None:
            raise ValueError(
                "test alarms must stay P4, desk only: {priority: P4, recipients: [vt_desk]}"
            )
        if any(step.target == "police_unit" for step in self.escalation["P4"].steps):
            raise ValueError("the P4 chain must not escalate to a police unit")
        for name in VICTIM_ALARMS:
            rule = self.alert_types[name]
            if rule.priority != "P1" or not {"police_unit", "vt_desk"} <= set(rule.recipients):
                raise ValueError(f"{name} alarms must stay P1 with recipients police_unit and "
                                 "vt_desk (a victim's alarm is protected alike in every region)")
        if not any(step.action == "escalate" for step in self.escalation["P1"].steps):
            raise ValueError("the P1 chain must have an escalate step (a P1 alert nobody "
                             "acknowledges escalates)")
        return self

    def apply(self, override: RegionOverride) -> RegionRules:
        unknown = [t for t in override.alert_types if t not in self.alert_types]
        if unknown:
            raise ValueError(f"override for unknown alert types {unknown}")
        alert_types = dict(self.alert_types)
        for name, change in override.alert_types.items():
            alert_types[name] = change.apply(alert_types[name])
        return RegionRules(
            alert_types=alert_types,
            escalation={**self.escalation, **override.escalation},
            also_notify_home_region=(
                self.also_notify_home_region
                if override.also_notify_home_region is None
                else override.also_notify_home_region
            ),
        )


class Policy(_Strict):
    version: Literal[1]
    alert_types: dict[str, AlertTypeRule]
    escalation: dict[Priority, EscalationChain]
    also_notify_home_region: bool = True
    custody_release: CustodyReleaseConfig
    exercise: ExerciseConfig
    regions: dict[Annotated[str, Field(pattern=REGION_KEY_PATTERN)], RegionOverride] = {}

    @model_validator(mode="after")
    def _every_region_valid(self) -> Policy:
        base = self.base_rules()  # validates the base rules
        for key, override in self.regions.items():
            try:
                base.apply(override)
            except ValidationError as exc:
                raise ValueError(f"region override {key}: {exc}") from None
            except ValueError as exc:
                raise ValueError(f"region override {key}: {exc}") from None
        for vr_key in (k for k in self.regions if k.startswith("VR")):
            for unit_key in (k for k in self.regions if k.startswith("RE")):
                self.rules_for(vr_key, unit_key)
        return self

    def base_rules(self) -> RegionRules:
        return RegionRules(
            alert_types=self.alert_types,
            escalation=self.escalation,
            also_notify_home_region=self.also_notify_home_region,
        )

    def rules_for(self, vr_code: str | None, police_unit: str | None) -> RegionRules:
        """Base rules, then the police unit's override, then the safety region's override."""
        rules = self.base_rules()
        for key in (police_unit, vr_code):
            if key is not None and key in self.regions:
                rules = rules.apply(self.regions[key])
        return rules


def default_policy_text() -> str:
    return resources.files("backend.routing").joinpath("policy.yaml").read_text(encoding="utf-8")


def parse_policy(text: str, *, source: str = "<policy>") -> Policy:
    """Validate a policy document given as YAML text."""
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise PolicyError(f"{source}: a policy must be a YAML mapping")
    try:
        return Policy.model_validate(document)
    except ValidationError as exc:
        raise PolicyError(f"{source}: invalid routing policy:\n{exc}") from exc


def load_policy(path: str | Path | None = None) -> Policy:
    """The routing policy from `path`, or the packaged `policy.yaml`."""
    if path is None:
        return parse_policy(default_policy_text(), source="backend/routing/policy.yaml")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read routing policy: {exc}") from exc
    return parse_policy(text, source=str(path))
