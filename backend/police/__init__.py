"""Police hand-off: the formats, signatures, delivery policy and HTTP client for police channels.

Modules (pure unless noted):

- `document`: reading the alert document (the JSON body every police channel carries) and the
  lifecycle rule that maps an alert's sequence and state to a message kind (alert/update/cancel).
- `cloudevent`: the JSON format, a CloudEvents 1.0 structured event whose `data` is the document.
- `cap`: the CAP 1.2 XML format and its validation against the official OASIS schema.
- `signing`: Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
- `retry`: the delivery policy (retry / give up / delivered, backoff, deadline -> unreachable).
- `attempt`: `AttemptResult`, the outcome of one HTTP attempt, shared by `client` and `retry`.
- `client`: the webhook HTTP client on urllib3 (I/O; the only place that sees its types).
- `errors`: the package's error tree.

See README.md in this directory for the wire formats.
"""
