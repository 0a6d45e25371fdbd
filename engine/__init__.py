"""dicom-tls-wizard engine: plan, certificate checks, cipher policies, echo ladder, backends.

The engine never imports the wizard or the CLI; they are faces of it.
"""

__version__ = "0.1.0"
