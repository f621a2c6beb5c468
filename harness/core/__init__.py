"""What every stage shares: the config and its keys (config.py), the results table's and run directory's
contract (schema.py), the registries that name components in a config (registry.py), user errors (errors.py)
and atomic files (io.py). Nothing here imports another stage."""
