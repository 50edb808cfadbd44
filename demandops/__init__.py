"""demandops: the shared kernel (settings, the raw-data contract, errors, the simulator)."""
