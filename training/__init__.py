"""Training, evaluation and data-report commands (`python -m training.<command>`)."""
