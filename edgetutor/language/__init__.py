"""Shared text handling: the one place that normalises, stems, finds negation and numbers
(`lexicon`), matches clinical phrases with their typos and abbreviations (`wording`) and reads
doses and units as clinicians write them (`doses`). The patient, the scorer and the case checks all
use it; it imports nothing of theirs.
"""
