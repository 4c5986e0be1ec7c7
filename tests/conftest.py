"""Shared fixtures: the protocol-faithful fakes in tests/fakes/ are plugins every test can use."""

pytest_plugins = [
    "tests.fakes.anthropic_api",
    "tests.fakes.github_api",
    "tests.fakes.webhook_receiver",
]
