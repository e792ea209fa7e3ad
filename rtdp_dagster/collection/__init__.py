"""Collection: sources read time windows; collectors turn rows into envelopes and publish them."""
