"""Police subscriptions and the webhook delivery outbox.

- `models`: `Subscription` (target URL, secret, filter, format, active, drill),
  `Delivery` (one row per subscription and alert message, by sequence and escalation step,
  with the message's time: the outbox) and `DeliveryAttempt` (the delivery log).
- `filters`: which subscriptions an alert document goes to (pure).
- `status`: the alert's aggregate `police_delivery` state (pure).
- `service`: persistence only.
- `hook`: the `AlertHook` that writes delivery rows inside the alert's transaction (and an
  escalation's, for the escalation loop).
- `worker`: the delivery worker thread (claim, sign, send, retry, record).
- `flows`: replay and subscription management used by the views.
- `views`: `/api/v1/subscriptions`, `/api/v1/deliveries`, alert delivery replay.
- `wiring`: builds hook and worker for a runtime.
- `errors`: the package's error tree.

See docs/police.md.
"""
