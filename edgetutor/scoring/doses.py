"""Doses in free-text plans checked against a case.

`check` compares what `edgetutor.language.doses.parse` read from a plan with the case's accepted
regimens for this patient (mg/kg through the case's weight, tablets through the tablet strength, a
daily total through the frequency).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..cases.schema import DoseRange, DrugDose, Regimen
from ..language.doses import Amount, Unit, Written, parse_unit
from ..language.wording import words_of

EPSILON = 0.02  # rounding a trainee may do ("39 mg" for 3 mg/kg x 13 kg)


@dataclass
class Verdict:
    credit: float
    note: str
    wrong: bool = False  # a stated dose out of range (not merely missing)


def _convert(a: Amount, target: Unit, value: float, ctx: _Context) -> float | None:
    """`value` in a's unit expressed in the target unit, or None when they cannot be compared."""
    v = value * a.unit.factor
    if a.unit.dim != target.dim:
        pair = {a.unit.dim, target.dim}
        if pair != {"tablet", "mass"} or not ctx.regimen.tablet_mg:
            return None
        v = v * ctx.regimen.tablet_mg if a.unit.dim == "tablet" else v / ctx.regimen.tablet_mg
    if a.unit.per_kg != target.per_kg:
        if not ctx.weight:
            return None
        v = v * ctx.weight if a.unit.per_kg else v / ctx.weight
    if a.unit.per != target.per:
        freq = ctx.frequency()
        if "hour" in (a.unit.per, target.per) or not freq:
            return None
        v = v / freq if a.unit.per == "day" else v * freq
    return v / target.factor


@dataclass
class _Context:
    regimen: Regimen
    written: Written
    weight: float | None

    def frequency(self) -> float | None:
        stated = set(self.written.frequencies)
        if len(stated) == 1:
            return stated.pop()
        f = self.regimen.frequency_per_day
        return f.min if f is not None and f.min == f.max else None


def _within(lo: float, hi: float, r: DoseRange) -> bool:
    return r.min * (1 - EPSILON) <= lo and hi <= r.max * (1 + EPSILON)


def _show(r: DoseRange, unit: str = "") -> str:
    span = f"{r.min:g}" if r.min == r.max else f"{r.min:g}-{r.max:g}"
    return f"{span} {unit}".strip()


def check_regimen(regimen: Regimen, written: Written, weight: float | None) -> Verdict:
    ctx = _Context(regimen, written, weight)
    missing: list[str] = []
    wrong: list[str] = []
    # amount
    if not written.amounts:
        missing.append("dose not stated")
    else:
        seen: list[str] = []
        ok = False
        for a in written.amounts:
            for r in regimen.dose:
                target = parse_unit(r.unit or "mg")
                lo, hi = _convert(a, target, a.lo, ctx), _convert(a, target, a.hi, ctx)
                if lo is None or hi is None:
                    continue
                if _within(lo, hi, r):
                    ok = True
                seen.append(f"{a.text} is {lo:.3g} {target.label()}, expected {_show(r, target.label())}")
        if not ok:
            if seen:
                wrong.append("dose " + seen[0])
            else:
                missing.append(f"dose not understood ({written.amounts[0].text})")
    if regimen.percent is not None and written.percents:
        if not any(_within(p, p, regimen.percent) for p in written.percents):
            wrong.append(f"strength {written.percents[0]:g}%, expected {_show(regimen.percent, '%')}")
    # frequency
    f = regimen.frequency_per_day
    if f is not None:
        if written.frequencies:
            if not any(_within(x, x, f) for x in written.frequencies):
                wrong.append(f"{written.frequencies[0]:g} doses a day, expected {_show(f)}")
        elif written.single and f.min <= 1:
            pass
        elif "frequency_per_day" not in regimen.optional:
            missing.append("frequency not stated")
    # course length
    d = regimen.days
    if d is not None:
        days = list(written.days)
        freq = ctx.frequency()
        if written.dose_counts and freq:
            days += [(n / freq, n / freq) for n in written.dose_counts]
        if len(days) > 1 and written.then:
            days = [(sum(x[0] for x in days), sum(x[1] for x in days))]
        if days:
            if not any(_within(lo, hi, d) for lo, hi in days):
                wrong.append(f"{_show(DoseRange(min=days[0][0], max=days[0][1]))} days, expected {_show(d)}")
        elif written.single and d.min <= 1:
            pass
        elif "days" not in regimen.optional:
            missing.append("duration not stated")
    h = regimen.hours
    if h is not None:
        if written.hours:
            if not any(_within(lo, hi, h) for lo, hi in written.hours):
                wrong.append(f"over {written.hours[0][0]:g} hours, expected {_show(h)}")
        elif "hours" not in regimen.optional:
            missing.append("time to give it over not stated")
    if wrong:
        return Verdict(0.0, "; ".join(wrong), True)
    if missing:
        return Verdict(-1.0, "; ".join(missing))  # the caller turns -1 into the partial credit
    return Verdict(1.0, "dose, frequency and duration as expected")


def check(dose: DrugDose, written: Written, weight: float | None, said: list[str], phrase: str) -> Verdict:
    """The best verdict over the drug's regimens that apply to what was written."""
    if phrase in dose.named_regimens:
        return Verdict(1.0, f"{phrase!r} names the whole regimen")
    best: Verdict | None = None
    for regimen in dose.regimens:
        if regimen.route and not any(all(w in said for w in words_of(route)) for route in regimen.route):
            continue
        v = check_regimen(regimen, written, weight)
        if v.credit < 0:
            v = Verdict(dose.partial_credit, v.note)
        if best is None or (v.credit, not v.wrong) > (best.credit, not best.wrong):
            best = v
    return best or Verdict(dose.partial_credit, "no accepted regimen for the route written")
