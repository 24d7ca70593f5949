"""Running a lowered graph: steps, plans, models, threads."""
