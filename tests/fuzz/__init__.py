"""Fuzz tests: random and hostile input at every webhook endpoint, through the real app."""
