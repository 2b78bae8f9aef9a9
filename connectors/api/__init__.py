"""The HTTP API (``/v1``) for national systems, focal points, the regional body and operators."""
