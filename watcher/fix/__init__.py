"""The auto-fix pipeline: redact, gather context, analyse, guard, commit, open the PR."""
