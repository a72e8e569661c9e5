"""The registry copy that real-time checks read: the store and its cache, state, change feed."""
