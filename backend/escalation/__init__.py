"""Escalation: carrying out the routing policy's escalation plans over time.

- `plan_codec`: the escalation plan and recipients as JSON (stored on the alert).
- `loop`: `EscalationLoop(runtime, clock)`: takes the alerts whose next escalation is due one at
  a time, each in a transaction of its own (`FOR NO KEY UPDATE SKIP LOCKED` on PostgreSQL, so
  several processes can run it), carries out the due steps of `backend.routing.escalation_due`
  (timeline entry, case log entry, console event `alert.escalated`, a police feed message when
  the step goes to the police unit directly) and schedules the next one; an alert that met a
  transient database error is tried again at the next pass. `run_once(now)` is one pass, for
  tests with a controllable clock.
- `last_step`: where an alert's escalation stands (the last step carried out after the first
  notification), for the console's mark on an escalated alert.
- `errors`: the error tree.
"""
