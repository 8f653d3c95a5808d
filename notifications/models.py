"""Outgoing messages, their delivery records, and the devices they reach."""
