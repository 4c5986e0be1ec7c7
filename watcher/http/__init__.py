"""The HTTP side: health, /metrics, and (later) the JSON API and dashboard."""
