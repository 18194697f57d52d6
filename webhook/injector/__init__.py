"""The admission webhook process: HTTPS, TLS and certificate rotation, configuration sources, metrics,
Events and the admission log, around the pure core."""
