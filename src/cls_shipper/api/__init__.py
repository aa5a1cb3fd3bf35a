"""HTTP surfaces: the legacy REST API (`legacy`) and API 3.0 (`v3`), thin over `service`."""
