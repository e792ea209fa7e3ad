class StackError(Exception):
    """An expected failure of the local stack, reported as one line (service, cause, log file)."""
