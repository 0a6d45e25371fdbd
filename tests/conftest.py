"""Fixtures shared by every test folder: the real peers and TLS files of tests/support/peers.py
(tls_files, orthanc, storescp_tls) are registered here once, so no test module imports a fixture."""

pytest_plugins = ["tests.support.peers"]
