"""Shared test helpers: real peers to talk to (peers.py) and TLS files for them (tlsfiles.py)."""
