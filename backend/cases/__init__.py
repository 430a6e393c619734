"""Cases: one victim, one offender, their devices, measures and named contacts."""
