"""The access log of location data (NEN 7513 style): who read what, when, on whose behalf, why."""
