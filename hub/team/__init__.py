"""Who is who (the people directory) and what they decide (approval requests)."""
