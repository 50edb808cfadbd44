"""The data room: the simulator, bring-your-own imports, DVC versions, and the gate that quarantines bad periods."""
