"""Database tables and the engine factory."""
