"""demandops: the shared kernel (settings, the raw-data contract, errors, frequencies, the production database)."""
