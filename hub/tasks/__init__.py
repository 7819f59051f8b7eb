"""Task automation (#20): task lists in (intake), recurring tasks, stalled tasks, assignment.

Each part is a rule-language feature: the hub turns something into events (a posted list,
an occurrence, a stall), and rules decide what to write to Notion through the delivery
engine, which keeps Notion's 3 requests/s budget and honours Retry-After.
"""
