"""When things happen on their own: the scheduler (rule schedules, ticks) and upkeep."""
