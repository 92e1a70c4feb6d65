"""Scheduling: practitioners (more to come with the scheduling issue)."""
