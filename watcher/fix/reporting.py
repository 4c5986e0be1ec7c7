"""A recorded fix as people read it: the report's per-group analysis, and the files a dry run
(or a patch below the PR threshold) writes to `output_dir`."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from watcher import report
from watcher.model import ErrorGroup, Fix

MAX_REPORT_DIFF = 6000  # characters of the diff shown in a report section


def write_outputs(
    fix: Fix, group: ErrorGroup, output_dir: str | Path, redact: Callable[[str], str]
) -> list[str]:
    """`<output_dir>/<group>.patch` (when there is a diff) and `<group>.md`, redacted."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^\w.-]", "_", group.id)
    written = []
    if fix.diff:
        (out / f"{name}.patch").write_text(fix.diff, encoding="utf-8")
        written.append(str(out / f"{name}.patch"))
    section = report.render_section(1, group, report_analysis(fix))
    (out / f"{name}.md").write_text(redact(section) + "\n", encoding="utf-8")
    written.append(str(out / f"{name}.md"))
    return written


def report_analysis(fix: Fix) -> report.Analysis:
    """A recorded fix as the report's per-group analysis: root cause, proposed fix, PR link."""
    details = fix.details
    parts = [str(details["summary"])] if details.get("summary") else []
    if fix.status == "rejected":
        reasons = details.get("reasons") or [fix.error]
        parts.append("The proposed patch was refused:\n\n" + "\n".join(f"- {r}" for r in reasons))
    elif fix.status in ("failed", "skipped"):
        parts.append(f"The fix pipeline did not finish: {fix.error}")
    elif fix.status == "analyzed" and details.get("decision"):
        parts.append(f"Root cause only: {details['decision']}.")
    if fix.diff:
        diff = fix.diff if len(fix.diff) <= MAX_REPORT_DIFF else fix.diff[:MAX_REPORT_DIFF] + "…\n"
        parts.append(report.fenced(diff, "diff"))
    if details.get("files"):
        parts.append("Written to: " + ", ".join(f"`{f}`" for f in details["files"]))
    root_cause = fix.root_cause or (f"No analysis: {fix.error}" if fix.error else "")
    return report.Analysis(root_cause, "\n\n".join(parts), fix.confidence, fix.pr_url)
