"""The admin HTTP server: health, readiness, metrics, JSON API and the status page."""
