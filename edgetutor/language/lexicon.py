"""Words: normalisation, stemming, lay-term synonyms, negation and number words.

Shared by retrieval (what was asked) and the guard (what was said), so both read text the same way.
The synonym groups map the ways trainees and patients say a thing (lay words, abbreviations,
British and American spellings) onto one concept token, so that "any fits?" finds a fact whose
keywords say "convulsions".
"""

from __future__ import annotations

import re
from functools import lru_cache

# Words that carry no meaning for matching a question to a fact.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any anything are aren around as at be
    because been before being below between both but by can could did do does doing done down
    during each either else ever every few for from further get gets getting got had has have
    having he her here hers herself him himself his how i if in into is it its itself just
    let lets like ll m ma may me might mine more most much must my myself near need no nor not
    now o of off often on once only or other our ours ourselves out over own please re really s
    same shall she should so some something such t tell than that the their theirs them
    themselves then there these they this those through to too under until up upon us ve very
    was we were what when where which while who whom whose why will with would y yes yet you
    your yours yourself yourselves okay ok right well still ever kindly sir madam mama baba mum
    mr mrs ms dear doctor nurse today now know think feel feeling feels felt say said
    go going come coming see seen look looks make made take took taken give gave given
    thing things lot lots bit little many thank thanks hello hi good morning afternoon evening
    ask asking question questions describe explain sort kind
    """.split()
)

# Negation cues: the guard uses them to catch a reply that flips a fact's polarity.
NEGATIONS = frozenset(
    "no not never none nothing nobody neither nor without cannot can't don't doesn't didn't "
    "haven't hasn't hadn't isn't aren't wasn't weren't won't wouldn't denies deny n't".split()
)

NUMBER_WORDS = {
    "zero": 0, "one": 1, "once": 1, "two": 2, "twice": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100, "dozen": 12,
    "half": 0.5, "single": 1, "couple": 2, "fortnight": 14,
}  # fmt: skip

# Synonym groups: first word is the concept token. Multi-word phrases are matched as phrases.
SYNONYMS: list[list[str]] = [
    [
        "fever",
        "fevers",
        "feverish",
        "temperature",
        "hot body",
        "body hot",
        "hot",
        "pyrexia",
        "febrile",
        "warm body",
        "homa",
        "bukhar",
        "bukhaar",
        "jor",
        "malungo",
    ],
    ["chills", "chill", "rigors", "rigor", "shivering", "shiver", "shivers", "shaking with cold", "cold"],
    ["sweat", "sweats", "sweating", "sweaty", "night sweats", "diaphoresis", "perspiring"],
    [
        "seizure",
        "seizures",
        "fits",
        "fit",
        "fitting",
        "convulsion",
        "convulsions",
        "convulsing",
        "jerking",
        "epilepsy",
    ],
    [
        "confusion",
        "confused",
        "disoriented",
        "not making sense",
        "behaving strangely",
        "drowsy",
        "drowsiness",
        "sleepy",
        "lethargic",
        "lethargy",
        "unconscious",
        "unresponsive",
        "floppy",
        "not waking",
    ],
    [
        "vomit",
        "vomiting",
        "vomited",
        "throwing up",
        "throw up",
        "threw up",
        "being sick",
        "emesis",
        "puking",
        "ulti",
        "kutapika",
        "kusanza",
        "nausea",
        "nauseous",
        "nauseated",
    ],
    [
        "diarrhoea",
        "diarrhea",
        "running stomach",
        "runny stomach",
        "loose stools",
        "loose stool",
        "watery stools",
        "loose motions",
        "runs",
        "the runs",
        "dast",
        "kuhara",
        "kutsegula m'mimba",
    ],
    ["stool", "stools", "poo", "poop", "bowel", "bowels", "motions", "toilet", "faeces", "feces", "defecate"],
    ["constipation", "constipated", "hard stools", "not opening bowels"],
    [
        "urine",
        "urinate",
        "urinating",
        "urination",
        "pee",
        "peeing",
        "wee",
        "passing water",
        "pass water",
        "passing urine",
        "micturition",
        "voiding",
    ],
    ["cough", "coughing", "coughs", "coughed", "khasi", "khansi", "kikohozi", "chifuwa"],
    ["sputum", "phlegm", "mucus", "spit", "spitting", "expectorate", "catarrh"],
    [
        "breath",
        "breathing",
        "breathe",
        "breathless",
        "breathlessness",
        "short of breath",
        "shortness of breath",
        "sob",
        "dyspnoea",
        "dyspnea",
        "difficulty breathing",
        "fast breathing",
        "wheeze",
        "wheezing",
    ],
    [
        "chest pain",
        "chest pains",
        "chest tightness",
        "tight chest",
        "heavy chest",
        "pain in chest",
        "pain in the chest",
        "chest discomfort",
        "angina",
    ],
    [
        "headache",
        "headaches",
        "head pain",
        "head ache",
        "head paining",
        "head hurts",
        "sore head",
        "migraine",
    ],
    ["abdomen", "abdominal", "stomach", "tummy", "belly", "abdo"],
    [
        "pain",
        "pains",
        "painful",
        "ache",
        "aches",
        "aching",
        "hurt",
        "hurts",
        "hurting",
        "sore",
        "soreness",
        "tender",
        "paining",
        "dard",
        "maumivu",
        "ululu",
    ],
    ["bleed", "bleeding", "bled", "blood", "haemorrhage", "hemorrhage", "bloody"],
    ["rash", "rashes", "spots", "skin lesions", "hives", "itchy skin"],
    [
        "swelling",
        "swollen",
        "swell",
        "oedema",
        "edema",
        "puffy",
        "puffiness",
        "distended",
        "distension",
        "distention",
        "bloated",
        "bloating",
    ],
    [
        "medicine",
        "medicines",
        "medication",
        "medications",
        "meds",
        "drug",
        "drugs",
        "tablet",
        "tablets",
        "pills",
        "pill",
        "treatment",
        "remedies",
        "remedy",
        "herbs",
        "herbal",
        "injection",
        "injections",
        "syrup",
    ],
    ["allergy", "allergies", "allergic", "reaction", "reactions"],
    ["operation", "operations", "surgery", "surgeries", "operated", "operated on"],
    [
        "irritable",
        "irritability",
        "fussy",
        "fussiness",
        "cranky",
        "inconsolable",
        "crying a lot",
        "crying all the time",
    ],
    ["tourniquet", "tourniquets", "tight band", "tied", "tie", "tying", "ligature", "band on"],
    ["admitted", "admission", "admissions", "hospitalised", "hospitalized", "stayed in hospital"],
    ["transfusion", "transfusions", "blood transfusion", "given blood"],
    [
        "alcohol",
        "drink alcohol",
        "drinking alcohol",
        "beer",
        "booze",
        "liquor",
        "spirits",
        "drinker",
        "drunk",
    ],
    ["smoke", "smoking", "smoker", "cigarette", "cigarettes", "tobacco", "fags"],
    ["pregnant", "pregnancy", "expecting", "with child", "gravid", "antenatal", "anc"],
    ["period", "periods", "menses", "menstruation", "menstrual", "lmp", "last period"],
    [
        "family",
        "relatives",
        "household",
        "parents",
        "siblings",
        "brother",
        "sister",
        "father",
        "mother",
        "husband",
        "wife",
        "children",
    ],
    ["eat", "eating", "food", "appetite", "hungry", "meals", "feed", "feeding", "feeds"],
    ["drink", "drinking", "fluids", "thirst", "thirsty", "water"],
    [
        "breastfeed",
        "breastfeeding",
        "breast feeding",
        "breastfed",
        "nursing",
        "suckle",
        "suckling",
        "breast milk",
    ],
    ["weight", "weight loss", "losing weight", "lost weight", "thin", "thinner", "slimming", "clothes loose"],
    ["tired", "tiredness", "fatigue", "weak", "weakness", "exhausted", "no energy", "malaise"],
    [
        "dizzy",
        "dizziness",
        "lightheaded",
        "light headed",
        "faint",
        "fainting",
        "fainted",
        "giddy",
        "collapse",
        "collapsed",
    ],
    [
        "vision",
        "eyesight",
        "sight",
        "blurred",
        "blurry",
        "seeing",
        "see clearly",
        "visual",
        "flashing lights",
    ],
    ["neck", "stiff neck", "neck stiffness"],
    ["travel", "travelled", "traveled", "trip", "journey", "been away", "visited"],
    ["job", "work", "occupation", "employment", "farmer", "farming", "works"],
    [
        "vaccine",
        "vaccines",
        "vaccination",
        "vaccinations",
        "immunisation",
        "immunisations",
        "immunization",
        "immunizations",
        "jabs",
        "injections as a baby",
        "shots",
    ],
    ["net", "bed net", "mosquito net", "itn", "llin", "bednet"],
    ["hiv", "aids", "viral load", "arv", "arvs", "art", "antiretroviral", "antiretrovirals"],
    ["diabetes", "diabetic", "sugar disease", "high sugar", "sugar"],
    ["hypertension", "high blood pressure", "blood pressure", "pressure", "bp"],
    [
        "duration",
        "how long",
        "since when",
        "when did",
        "started",
        "start",
        "began",
        "begin",
        "onset",
        "days",
        "weeks",
    ],
    [
        "worry",
        "worried",
        "worries",
        "concern",
        "concerns",
        "concerned",
        "afraid",
        "scared",
        "fear",
        "frightened",
        "anxious",
    ],
    ["snake", "snakebite", "bitten", "bite", "serpent"],
    ["jaundice", "yellow eyes", "yellow skin", "yellowness", "yellow"],
    ["wound", "cut", "injury", "injured", "trauma"],
    ["heart", "palpitations", "racing heart", "pounding heart", "heartbeat"],
    ["sleep", "sleeping", "slept", "insomnia"],
]

_SUFFIXES = ("ingly", "ings", "ing", "edly", "ed", "ies", "es", "s", "ly")


def normalise(text: str) -> str:
    """Lower case, apostrophes kept inside words, everything else non-alphanumeric to spaces."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"[^a-z0-9'.]+", " ", text)
    text = re.sub(r"(?<![0-9])\.|\.(?![0-9])", " ", text)  # keep decimal points only
    return " ".join(text.split())


def tokens(text: str) -> list[str]:
    return normalise(text).split()


@lru_cache(maxsize=20000)
def stem(word: str) -> str:
    """A light suffix stripper: enough to equate cough/coughing/coughed, not a real stemmer."""
    if len(word) <= 4 or word.isdigit():
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            if suffix == "ies":
                return base + "y"
            if len(base) > 2 and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]  # running -> run
            return base
    return word


def _build() -> tuple[dict[str, str], dict[tuple[str, ...], str], int]:
    single: dict[str, str] = {}
    phrases: dict[tuple[str, ...], str] = {}
    for group in SYNONYMS:
        concept = "~" + group[0].replace(" ", "_")
        for term in group:
            words = tuple(stem(w) for w in tokens(term))
            if len(words) == 1:
                single.setdefault(words[0], concept)
            else:
                phrases.setdefault(words, concept)
    longest = max(len(p) for p in phrases)
    return single, phrases, longest


_SINGLE, _PHRASES, _LONGEST = _build()


def synonym_words() -> set[str]:
    """Every single (stemmed) word of the synonym groups: typo correction may land on them."""
    return set(_SINGLE)


def content_terms(text: str) -> list[str]:
    """Stemmed content words plus concept tokens (`~fever`) for every synonym found.

    Concept tokens are added next to the words, not instead of them, so an exact word match
    still counts for more than a synonym match.
    """
    words = [stem(w) for w in tokens(text)]
    out: list[str] = []
    for i in range(len(words)):
        for n in range(_LONGEST, 1, -1):
            concept = _PHRASES.get(tuple(words[i : i + n]))
            if concept:
                out.append(concept)
                break
    for w in words:
        if w in STOPWORDS or w.strip("'") in STOPWORDS:
            continue
        out.append(w)
        concept = _SINGLE.get(w)
        if concept:
            out.append(concept)
    return out


def has_negation(text: str) -> bool:
    words = tokens(text)
    return any(w in NEGATIONS or w.endswith("n't") for w in words)


def numbers_in(text: str) -> set[float]:
    """Every number in the text, written with digits or words ("three days" -> 3)."""
    found: set[float] = set()
    norm = normalise(text)
    for match in re.finditer(r"\d+(?:\.\d+)?", norm):
        found.add(float(match.group()))
    for word in norm.split():
        value = NUMBER_WORDS.get(word.strip("'"))
        if value is not None:
            found.add(float(value))
    return found


def edit_distance(a: str, b: str, limit: int) -> int:
    """Damerau-Levenshtein distance (adjacent swaps count 1), giving up above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]
