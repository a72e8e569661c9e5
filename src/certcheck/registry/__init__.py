"""The cached registry: snapshot parsing, import, the store in front of the database."""
