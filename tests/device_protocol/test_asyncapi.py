"""docs/asyncapi.yaml must describe what the code does: same topics, same enums, same limits."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from device_protocol import ACK_STATES, ALARM_KINDS, Topics, models
from device_protocol.models import MAX_BATCH_FIXES

SPEC = yaml.safe_load((Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml").read_text())


def test_channel_addresses_match_the_topic_grammar():
    topics = Topics()
    addresses = {name: c["address"] for name, c in SPEC["channels"].items()}
    for channel in ("alarm", "loc", "status", "ack", "cmd"):
        assert addresses[channel] == topics.device("DEVICE", channel).replace("DEVICE", "{deviceId}")
    assert addresses["policeAlerts"] == topics.police_alerts("UNIT").replace("UNIT", "{unit}")
    assert addresses["owntracks"] == "owntracks/{user}/{device}"


def test_enums_and_limits_match_the_models():
    messages = SPEC["components"]["messages"]
    assert messages["alarm"]["payload"]["properties"]["kind"]["enum"] == list(ALARM_KINDS)
    assert messages["ack"]["payload"]["properties"]["state"]["enum"] == list(ACK_STATES)
    assert messages["fixBatch"]["payload"]["properties"]["fixes"]["maxItems"] == MAX_BATCH_FIXES


# Each message of the description and the model the decoders read it with.
MODELS = {
    "alarm": models.Alarm, "fix": models.Fix, "fixBatch": models.FixBatch,
    "status": models.Status, "ack": models.Ack, "configCommand": models.ConfigCommand,
    "warnCommand": models.WarnCommand, "owntracksLocation": models.OwnTracksLocation,
}
LIMITS = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength",
          "maxLength", "pattern", "enum", "const", "minItems", "maxItems")


def _resolve(schema: dict, defs: dict) -> dict:
    """A property's own schema: references followed, an optional one's null left out."""
    if "$ref" in schema:
        schema = {**defs[schema["$ref"].rsplit("/", 1)[-1]],
                  **{k: v for k, v in schema.items() if k != "$ref"}}
    branches = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if len(branches) == 1:
        schema = {**branches[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def _limits(schema: dict, defs: dict) -> dict:
    schema = _resolve(schema, defs)
    found = {k: schema[k] for k in LIMITS if k in schema}
    if "const" in found:  # its type goes without saying
        found.pop("type", None)
    if "items" in schema:
        found["items"] = {name: _limits(prop, defs) for name, prop in
                          _resolve(schema["items"], defs)["properties"].items()}
    return found


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_limit_of_the_models_is_in_the_description_and_no_other(name):
    """docs/asyncapi.yaml states each limit the decoders enforce, and nothing they do not."""
    model = MODELS[name]
    spec_defs = SPEC["components"]["schemas"]
    described = _resolve(SPEC["components"]["messages"][name]["payload"], spec_defs)
    code = model.model_json_schema(by_alias=True)
    code_defs = code.get("$defs", {})
    assert described["properties"].keys() == code["properties"].keys()
    for field, schema in code["properties"].items():
        assert _limits(described["properties"][field], spec_defs) == _limits(schema, code_defs), (
            f"{name}.{field}")
    # A producer always writes `cmd`; the decoder takes a config command without it.
    assert set(described.get("required", [])) - {"cmd"} == set(code.get("required", []))
    extra = code.get("additionalProperties")
    if extra is not None:  # the further settings of a config command: scalars
        types = {branch["type"] for branch in extra["anyOf"]} - {"integer"}
        assert set(described["additionalProperties"]["type"]) == types
