"""The model lifecycle: state machine, guards, MLflow registry adapter, audit log, CLI."""
