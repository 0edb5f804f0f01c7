"""Multi-domain training: data, losses, selective regularization, domain-bridging set, trainer."""
