"""The kubernetes source: pod logs through the API server (no node access, no DaemonSet)."""
