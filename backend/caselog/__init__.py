"""The case log (stalkingslogboek): one append-only, hash-chained timeline per case.

- `chain`: pure hashing (`entry_hash`, `canonical_json`) and verification (`verify_chain`).
- `service`: `append(session, case_id, kind, actor, data, ...)` (locks the case row on PostgreSQL
  so concurrent writers chain one after another), `entries(...)`, `verify(...)`.
- `hook`: `CaseLogHook`, an `AlertHook` that logs every alert raise and transition inside the
  alert's transaction.
- `views`: `GET /api/v1/cases/{id}/log`, `POST /api/v1/cases/{id}/log/notes`,
  `GET /api/v1/cases/{id}/log/verify`.
- `errors`: the error tree.
"""
