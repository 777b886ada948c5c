"""The built-in attacks, one module per family; each registers itself with `attacks.attack.register_attack`."""
