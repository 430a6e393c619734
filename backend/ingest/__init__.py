"""The ingest worker: MQTT in, pipeline, durable commit, PUBACK, fan-out."""
