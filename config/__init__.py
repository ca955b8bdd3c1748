"""The example gateway config and policies (package data), and their JSON Schemas."""
