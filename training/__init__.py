"""Feature engineering, datasets, the forecasting network, its training loop, baselines, metrics."""
