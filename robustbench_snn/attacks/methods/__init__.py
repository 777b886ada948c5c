"""The built-in attacks, one module per family; each registers itself with `attacks.registry`."""
