"""The HTTP face of a node (FastAPI): submission, replication, queries, operations."""

__all__: list[str] = []
