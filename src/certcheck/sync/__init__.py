"""The upstream feed: its client, page validation, and incremental sync into the store."""
