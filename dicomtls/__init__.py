"""dicom-tls-wizard: terminate Butterfly Cloud's DICOM-TLS in front of a plain-DICOM PACS.

The one installed top-level package. Its parts live in the repository's top folders (pyproject's
package-dir): dicomtls.engine (engine/: plan, checks, backends, terminator), and its two faces,
dicomtls.cli (cli/) and dicomtls.wizard (wizard/). See ARCHITECTURE.md.
"""
