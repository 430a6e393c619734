"""The MQTT outbox: downlink messages written with the change that caused them, published right
after commit, marked sent on the broker's PUBACK, and re-published by a sweeper when a crash or a
broker outage got in between (at-least-once; police receivers deduplicate on alert id, sequence
and escalation step: docs/protocol.md)."""
