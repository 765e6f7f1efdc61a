"""The service loop's scheduler: plan what is owed, deliver it exactly once.

`planner` writes due notices and alerts (SLA at risk / breached, progress every few days,
result and satisfaction coverage, reminders, overdue follow-ups, VIP check-ins); `delivery`
claims and sends notices (Rasa, email, SMS, the desk); `worker` runs both, once
(`kefu followups run --at`) or as a service (`kefu followups serve`); `sms` is the text
message interface with its logged stand-in.
"""
