"""Backend factory: the plan's `backend` key picks the implementation.

Imports are lazy so that, say, `dicomtls check-pem` never loads httpx or the terminator.
"""

from __future__ import annotations

from pydantic import BaseModel

from dicomtls.engine.backends.base import Backend
from dicomtls.engine.plan import Plan


class BackendOptions(BaseModel):
    """Choices made per run, never stored in the plan."""

    password: str | None = None  # NetScaler password, from the env var the plan names or a prompt
    insecure: bool = False  # NetScaler: skip management-certificate verification (loudly warned)
    replace_cert: bool = False  # renewal: allowed to replace the certificate of an existing pair
    passphrase: str | None = None  # the private key's passphrase, if it is encrypted


def get_backend(plan: Plan, options: BackendOptions | None = None) -> Backend:
    options = options or BackendOptions()
    if plan.backend == "netscaler":
        from dicomtls.engine.backends.netscaler import NetScalerBackend

        return NetScalerBackend(plan, options)
    from dicomtls.engine.backends.builtin import BuiltinBackend

    return BuiltinBackend(plan, options)
