"""The service spec: typed settings read from a stack, every problem collected, no Pulumi."""
