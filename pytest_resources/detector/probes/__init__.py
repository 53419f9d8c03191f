"""One probe module per resource kind, plus the self-announced leak capture."""
