"""Frame properties read from the gate masks: targets, features and the linear probes."""
