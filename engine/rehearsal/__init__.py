"""Rehearsal parts: stand-ins for what cannot run here (a NITRO simulator), never used in production."""
