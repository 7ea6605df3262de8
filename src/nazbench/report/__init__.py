"""The run report (controller side): summary.json, report.html and plots of a run directory.

    python -m nazbench.report build artifacts/<run_id>
    python -m nazbench.report compare artifacts/<a> artifacts/<b> [--out DIR]
    python -m nazbench.report runs artifacts/ [--json]

See :mod:`nazbench.report.data` for the inputs it reads, :mod:`nazbench.report.summary`
for how each number is derived. Needs matplotlib (requirements.txt); the hosts do not.
"""
