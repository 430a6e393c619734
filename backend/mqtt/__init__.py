"""MQTT plumbing: paho client construction and the embedded broker."""
