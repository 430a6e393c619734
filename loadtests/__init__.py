"""Load tests and the alarm-path benchmark.

- `locustfile`: locust users (an MQTT device user and an HTTP/WebSocket operator user).
- `bench`: `python -m loadtests.bench` (== `make bench`): the floor, the alarm path under
  background load, ingest throughput and worker memory, printed as a table and written to
  `docs/benchmarks.md`.
- `bench_geofence`: the geofence engine micro-benchmark.

Traffic goes to 127.0.0.1 only and is bounded in devices, rate and time.
"""
