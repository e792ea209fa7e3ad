"""`rtdp demo`: the whole platform in one command."""
