"""Working tickets to closure: what agents, supervisors and customers do to a case."""
