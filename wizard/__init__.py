"""The Textual wizard: one face of the engine. Nothing in engine/ imports this package."""
