"""watcher: tails production logs, groups the errors, exports their rates, proposes fixes."""

__version__ = "0.1.0"
