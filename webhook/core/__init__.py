"""The pure mutation: a Pod, the configuration and the settings in, a decision and JSON Patch ops out.
No I/O: the injector's server and the offline `inject` both call it."""
