"""Cases: the format (`schema`), reading (`loader`), checking (`lint`) and importing."""

from .loader import Problem, load_case, parse_case_text
from .schema import Case

__all__ = ["Case", "Problem", "load_case", "parse_case_text"]
