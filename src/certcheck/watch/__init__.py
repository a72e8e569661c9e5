"""Listing watch: the listings a platform keeps live, decided again when the registry changes,
and the events that tell the platform which of them changed decision (docs/watch.md)."""
