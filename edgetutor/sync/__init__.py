"""Device side of result sync: the device key, signed result events, the outbox, `sync` and USB bundles."""
