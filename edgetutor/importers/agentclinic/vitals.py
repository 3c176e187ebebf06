"""Vital signs: numbers into the case format's fields, everything else into the note."""

from __future__ import annotations

import re
from typing import Any

from .report import CaseImport
from .tables import FINDINGS
from .text import clean, human

_NUM = r"(\d+(?:\.\d+)?)"


def parse_vitals(raw: Any, info: CaseImport) -> dict[str, Any]:
    """Numbers into the schema's fields; anything else (and qualifiers) into `note`."""
    vitals: dict[str, Any] = {}
    notes: list[str] = []
    if not isinstance(raw, dict):
        if raw not in (None, {}):
            notes.append(clean(str(raw)))
            info.vitals_prose.append(clean(str(raw)))
        return {"note": "; ".join(notes)} if notes else {}

    def prose(label: str, value: str) -> None:
        notes.append(f"{label}: {value}")
        info.vitals_prose.append(f"{label}: {value}")

    def qualifier(label: str, value: str) -> None:
        # "120 bpm (normal for age)": the number is used, the remark kept for the trainee.
        for q in re.findall(r"\(([^)]*)\)", value):
            if not re.search(r"°|\d", q):
                notes.append(f"{label}: {q}")

    for key, value in raw.items():
        label = human(key)
        k = key.lower()
        if isinstance(value, dict):
            # "Blood_Pressure": {"Sitting": ..., "Standing": ...}: the first reading is the value.
            for i, (sub, reading) in enumerate(value.items()):
                sub_label = f"{label} ({human(sub).lower()})"
                text = clean(str(reading))
                m = re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", text)
                if i == 0 and m and "blood_pressure" in k and "bp_systolic" not in vitals:
                    vitals["bp_systolic"], vitals["bp_diastolic"] = int(m.group(1)), int(m.group(2))
                    info.vitals_parsed.append(f"{sub_label}: {text}")
                notes.append(f"{sub_label}: {text}")
            continue
        if isinstance(value, bool):
            if value and "normal" in k:
                notes.append("All vital signs within normal limits")
                info.vitals_prose.append(f"{label}: {value}")
            continue
        text = clean(str(value))
        field_name, number = _vital_field(k, text)
        if field_name and number is not None and field_name not in vitals:
            vitals[field_name] = number
            info.vitals_parsed.append(f"{label}: {text}")
            if field_name == "bp_systolic":
                m = re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", text)
                assert m is not None
                vitals["bp_diastolic"] = int(m.group(2))
                if "right" in k or "left" in k:
                    notes.append(
                        f"Blood pressure measured on the {label.lower().split('blood pressure ')[-1]}"
                    )
            qualifier(label, text)
            if field_name == "spo2":
                rest = re.sub(r"^\s*\d+\s*%\s*", "", text)
                if rest and rest.lower() != "on room air":
                    notes.append(f"SpO2: {rest}")
        else:
            prose(label, text)
    if vitals.get("bp_systolic") is not None and vitals["bp_diastolic"] >= vitals["bp_systolic"]:
        notes.append(f"Blood pressure: {vitals.pop('bp_systolic')}/{vitals.pop('bp_diastolic')} (as given)")
    if notes:
        vitals["note"] = "; ".join(dict.fromkeys(notes))
    return vitals


_VITAL_LIMITS = FINDINGS.vital_limits


def _vital_field(key: str, text: str) -> tuple[str | None, float | int | None]:
    low = text.lower()
    name: str | None = None
    number: float | int | None = None
    if "temp" in key:
        name = "temperature_c"
        if m := re.search(_NUM + r"\s*°?\s*c\b", low):
            number = round(float(m.group(1)), 1)
        elif m := re.search(_NUM + r"\s*°?\s*f\b", low):
            number = round((float(m.group(1)) - 32) * 5 / 9, 1)
    elif "blood_pressure" in key or key in ("bp",):
        name = "bp_systolic"
        if m := re.search(r"(\d{2,3})\s*/\s*(\d{2,3})", low):
            number = int(m.group(1))
    elif key in ("heart_rate", "pulse", "hr", "pulse_rate"):
        name = "heart_rate"
        if m := re.match(r"\s*(\d{2,3})\b", low):
            number = int(m.group(1))
    elif key.startswith("resp"):
        name = "resp_rate"
        if m := re.match(r"\s*(\d{1,3})\b", low):
            number = int(m.group(1))
    elif key in ("oxygen_saturation", "so2", "spo2", "sao2", "o2_saturation"):
        name = "spo2"
        if m := re.match(r"\s*(\d{2,3})\s*%", low):
            number = int(m.group(1))
    elif key == "weight":
        name = "weight_kg"
        if m := re.search(_NUM + r"\s*kg\b", low):
            number = float(m.group(1))
    elif key == "height":
        name = "height_cm"
        if m := re.search(_NUM + r"\s*cm\b", low):
            number = float(m.group(1))
    if name and number is not None:
        lo, hi = _VITAL_LIMITS[name]
        if not lo <= number <= hi:
            return name, None
    return name, number
