"""The dashboard: focal points, the regional body and operators in a browser, served by the API."""
