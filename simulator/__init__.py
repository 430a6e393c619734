"""A fleet of simulated victim and offender devices speaking device protocol v1.

Every payload and topic is built through `device_protocol`, the same code a firmware team reads.

- `regions`: real Dutch municipalities to place devices in.
- `geo`: WGS84 <-> RD New (EPSG:28992) metric coordinates.
- `movement`: seeded walking, cycling and driving movement in metres.
- `gps`: GPS noise consistent with the reported accuracy, clock skew, coverage gaps.
- `device`: one simulated device producing protocol messages over simulated time.
- `scenarios`: named, seeded, repeatable scenarios with the alerts they should raise.
- `transport`: where messages go (paho-mqtt, or an in-memory recorder for tests).
- `runner`: runs a scenario or a fleet over a transport and prints a summary (`main(argv)`).
- `errors`: the error tree.
"""
