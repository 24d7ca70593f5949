"""Running a graph: binders (op -> kernel calls), plans, schedules, models, threads."""
