"""The service loop's scheduler: plans what is due, delivers notices once, raises SLA alerts."""
