"""The Dagster code location of demandops."""
