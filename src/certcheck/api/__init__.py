"""The HTTP layer: routers, wire schemas, authentication and problem documents."""
