"""The built-in DICOM-TLS terminator (backend "builtin"): `dicomtls serve`, and in-process for the wizard.

Modules: config (runtime config from a plan), install (check + install into the state dir),
bundle (what the serving process runs, checked by the checker helper process), tlsserver (SSLContext
from the cipher policy), pdu (A-ASSOCIATE-RQ gate, RJ/ABORT), pump (one association's byte pump),
buffers (the pumps' mmap buffers and their free list), pumploop (the epoll set that steps the pumps and the TLS handshakes),
handshake (a handshake as a pump-loop job), health (PACS probes), server (the asyncio control plane),
admission (one connection, accept to live association), control (status and metrics endpoint), metrics (Prometheus), sdnotify
(systemd readiness), events (JSON log records), runner (serve / run_in_thread).
"""

from dicomtls.engine.terminator.runner import TerminatorHandle, run_in_thread, serve

__all__ = ["TerminatorHandle", "run_in_thread", "serve"]
