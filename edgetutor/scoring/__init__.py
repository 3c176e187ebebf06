"""Scoring: deterministic checklist scores and the itemised debrief."""
