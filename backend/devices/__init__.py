"""Devices (victim alarm devices, offender monitors) and their location pings."""
