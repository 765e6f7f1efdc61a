"""The service plan at work: policy, SLA maths, service records, tickets, orders, mail."""
