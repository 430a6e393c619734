"""Protective measures in the running system: storage (`models`, `repository` — the only place
where stored geometry meets shapely — and `service`), GeoJSON import/export with validation
(`flows`, `views`: `/api/v1/cases/{id}/measures`), the live engine of a process (`live`) and
zone tuning (`tuning`, the `schildwacht tune` command). The decisions are in `geofences`.
"""
