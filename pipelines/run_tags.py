"""Tags of Dagster runs that our code reads back (one owner for each name)."""

RETRAIN_REASON = "demandops/retrain_reason"  # set by the loop on the training runs it starts: why
