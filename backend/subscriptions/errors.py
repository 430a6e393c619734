"""Error tree of subscriptions and webhook deliveries; mapped to HTTP in `backend.api.errors`.

    SubscriptionError
    ├── SubscriptionNotFound   no subscription with that id (404)
    ├── DeliveryNotFound       no delivery with that id (404)
    ├── InsecureWebhookUrl     a webhook URL in plain HTTP to another host (422)
    └── NothingToReplay        the alert has no failed delivery to replay (409)
"""


class SubscriptionError(Exception):
    """Base of the errors of `backend.subscriptions`."""


class SubscriptionNotFound(SubscriptionError):
    pass


class DeliveryNotFound(SubscriptionError):
    pass


class NothingToReplay(SubscriptionError):
    pass


class InsecureWebhookUrl(SubscriptionError):
    pass
