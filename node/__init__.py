"""One participant's node: configuration, block production, gossip with peers."""

__all__: list[str] = []
