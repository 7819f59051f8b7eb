"""People at work: template filters over the directory (hub/config/people.py holds who is
who) and what they decide (approval requests)."""
