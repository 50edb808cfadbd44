"""The closed loop: the prediction log, live accuracy, drift, and the decisions to retrain and roll back."""
