"""Sources behind one small interface: read the points of a time window (start, end]."""
