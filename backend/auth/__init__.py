"""Authentication and authorisation of API clients."""
