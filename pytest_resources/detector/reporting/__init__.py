"""Reports for people and machines: JSON and HTML reports, the baseline file, per-test counts."""
