"""What both processes share: the custom resources' models, bounded text, the Kubernetes client and watch,
settings loading and the log format. Imports nothing else of the package."""
