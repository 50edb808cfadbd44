"""The BentoML forecasting service, its schemas, the Bento build and its smoke test."""
