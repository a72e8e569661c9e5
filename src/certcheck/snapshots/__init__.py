"""Registry snapshots: reading and validating files, importing them into the store, demo data."""
