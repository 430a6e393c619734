"""Alerts: raised by the pipeline, worked by operators, handed off to the police."""
