"""Find the columns that name a person or carry a direct identifier, by the column's name and by its values.

Pure logic: no Dagster here. `profile.py` calls `person_or_id_reason` for each column; every function returns ""
when the column is not an identifier, or a short reason a privacy officer can read, e.g.
"personal names (by its column name: last name)" or "national id numbers (US SSN format)".

Three rules, in this order:

1. The column's NAME says it holds a person's name (`person_name_column`): `fake_first_name`, `pt_surname`,
   `Nachname`, `nom_de_famille`, `givenName`, `name`... This fires whatever the cardinality (27 distinct
   surnames in 15,000 rows are still real surnames). The name is split into words (snake, kebab, camelCase,
   digits, accents stripped) and read word by word instead of being matched by one large regex.
2. The VALUES are mostly personal names (`person_name_values`), checked against the first- and last-name lists
   of Faker's person providers (all its locales), for columns whose name says nothing (`col_a`).
3. The VALUES are other direct identifiers (`identifier_by_content`): national id numbers, record numbers,
   payment card numbers, IBANs.

Phone numbers and e-mail addresses are found by `profile.identifier_reason`, not here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

PERSONAL_NAMES = "personal names"  # every person-name reason starts with this
USER_NAMES = "user names"
NATIONAL_IDS = "national id numbers"
RECORD_NUMBERS = "record numbers"
CARD_NUMBERS = "payment card numbers"
IBANS = "bank account numbers"

# --- rule 1: the column's name ----------------------------------------------------------------------------

# Words that mean "name" in a column name (English and the languages below); "nm" is the usual abbreviation.
NAME_WORDS = frozenset({
    "name", "names", "nm", "nombre", "nombres", "nome", "nomi", "nom", "noms", "naam", "namen", "navn", "namn", "nimi",
})
# Single words that are themselves a person's name part (no "name" word needed).
PERSON_NAME_TOKENS: dict[str, str] = {
    "surname": "last name", "surnames": "last name", "forename": "first name", "forenames": "first name",
    "fname": "first name", "lname": "last name", "mname": "middle name",
    "prenom": "first name", "prenoms": "first name",  # French prénom
    "cognome": "last name",  # Italian
    "apellido": "last name", "apellidos": "last name",  # Spanish
    "sobrenome": "last name", "apelido": "last name",  # Portuguese
    "nazwisko": "last name", "imie": "first name",  # Polish nazwisko, imię
    "etunimi": "first name", "sukunimi": "last name",  # Finnish
    "vezeteknev": "last name", "keresztnev": "first name", "utonev": "first name",  # Hungarian
    "patronymic": "patronymic", "otchestvo": "patronymic",
}
# A qualifier next to a name word turns it into a person's name: first_name, name_first, nombre_paciente...
_QUALIFIER_LABELS: dict[str, tuple[str, ...]] = {
    "first name": ("first", "given", "christian", "pila", "primer", "primo", "premier"),
    "last name": ("last", "family", "famille", "familia", "famiglia"),
    "middle name": ("middle", "segundo"),
    "maiden name": ("maiden", "birth", "soltera", "jeune", "nascimento"),
    "full name": ("full", "complete", "completo", "completa", "complet", "vollstandiger"),
    "nickname": ("nick",),
    "patient name": ("patient", "patients", "pt", "pat", "paciente", "paziente", "patiente"),
    "person name": ("person", "personal", "persona", "personne"),
    "customer name": ("customer", "customers", "cust", "kunde", "cliente", "client", "clients", "klient"),
    "contact name": ("contact", "contacto", "contatto", "kontakt"),
    "member name": ("member", "mbr", "membre", "miembro", "mitglied"),
    "doctor name": ("doctor", "dr", "physician", "phys", "surgeon", "gp", "medico", "medecin", "arzt", "clinician",
                    "consultant", "attending"),
    "nurse name": ("nurse",),
    "mother's name": ("mother", "mothers", "madre", "mere", "mutter", "mae", "moeder"),
    "father's name": ("father", "fathers", "padre", "pere", "vater", "pai", "vader"),
    "next-of-kin name": ("kin", "nok"),
    "spouse name": ("spouse", "husband", "wife", "conjoint", "conyuge", "ehepartner"),
    "guardian name": ("guardian", "parent", "parents", "caregiver", "carer"),
    "relative name": ("relative", "child", "children", "baby", "sibling"),
    "employee name": ("employee", "emp", "staff", "worker"),
    "student name": ("student", "pupil", "teacher"),
    "account holder name": ("holder", "cardholder", "owner", "beneficiary", "insured", "subscriber", "policyholder",
                            "applicant", "borrower", "debtor", "signatory"),
    "resident name": ("resident", "tenant", "passenger", "guest", "visitor", "traveller", "traveler"),
    "author name": ("author", "sender", "recipient", "witness", "victim", "suspect", "driver", "participant"),
}
# Prefixes that only qualify a name word written right after them, glued or not: sur_name, surname, fname,
# f_name, Vorname, vor_name, achternaam, fornavn, efternamn, sukunimi, Patientenname. Never after (name_f, name_for).
_PREFIX_LABELS: dict[str, tuple[str, ...]] = {
    "first name": ("f", "fore", "vor", "voor", "for", "etu", "ruf", "roep", "tilltals"),
    "last name": ("l", "sur", "nach", "zu", "familien", "achter", "etter", "efter", "suku", "slekts", "geslachts"),
    "middle name": ("m", "mellom", "mellem", "mellan", "tussen"),
    "maiden name": ("geburts", "madchen", "meisjes", "geboorte", "pige", "fodsels", "fodelse"),
    "patient name": ("patienten",),
    "customer name": ("kunden",),
}
PERSON_QUALIFIERS: dict[str, str] = {word: label for label, words in _QUALIFIER_LABELS.items() for word in words}
PERSON_PREFIXES: dict[str, str] = {
    **PERSON_QUALIFIERS, **{word: label for label, words in _PREFIX_LABELS.items() for word in words}
}
USER_QUALIFIERS = frozenset({"user", "login", "screen", "benutzer", "usuario", "utilisateur", "utente"})
# Little words between a name word and the qualifier after it: nom_de_famille, nombre_del_paciente, name_of_mother.
LINK_WORDS = frozenset({"of", "the", "de", "del", "della", "di", "da", "do", "du", "des", "d", "der", "den", "van", "von",
                        "la", "le", "dos", "das"})
# Affixes that say nothing about whose name it is: `name` with only these (and digits) around it is still a
# person's name. Any other word next to a bare name word makes it something else's name: hospital_name.
NOISE_WORDS = frozenset({
    "fake", "real", "raw", "txt", "text", "str", "string", "src", "source", "orig", "original", "clean", "cleaned",
    "val", "value", "col", "column", "fld", "std", "norm", "normalized", "normalised", "upper", "lower",
    "tbl", "dim", "stg", "new", "old", "current", "curr", "prev", "previous", "primary", "preferred", "official",
    "alias", "alt", "my", "your", "his", "her", "their", "encrypted", "masked", "hashed", "anon", "synthetic",
    "sample", "test", "input", "in", "out",
})

_TRANSLITERATE = str.maketrans({
    "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ß": "ss", "ł": "l", "Ł": "L", "đ": "d",
    "Đ": "D", "þ": "th", "Þ": "Th", "ı": "i", "’": "'", "‘": "'", "`": "'", "´": "'",
})


def strip_accents(text: str) -> str:
    """Prénom → Prenom, Førnavn → Fornavn, Łukasz → Lukasz, imię → imie (case kept)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def column_tokens(name: str) -> list[str]:
    """A column name as lower-case words: `fake_FirstName_2` → ['fake', 'first', 'name', '2'];
    `Prénom` → ['prenom']; `mother's-maiden name` → ['mothers', 'maiden', 'name']."""
    text = strip_accents(str(name))
    text = re.sub(r"'s\b", "s", text).replace("'", " ")
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)  # givenName → given Name
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", text)  # PTName → PT Name
    text = re.sub(r"([A-Za-z])([0-9])", r"\1 \2", text)
    text = re.sub(r"([0-9])([A-Za-z])", r"\1 \2", text)
    return [token for token in re.split(r"[^A-Za-z0-9]+", text.lower()) if token]


def _compound_label(token: str) -> str:
    """A one-word name part: surname, vorname, achternaam, fornavn, efternamn, lastname, fname, username..."""
    if token in PERSON_NAME_TOKENS:
        return PERSON_NAME_TOKENS[token]
    for suffix in ("names", "name", "naam", "navn", "namn", "nimi", "nm"):
        if token.endswith(suffix) and len(token) > len(suffix):
            prefix = token[: -len(suffix)]
            if prefix in PERSON_PREFIXES:
                return PERSON_PREFIXES[prefix]
            if prefix in USER_QUALIFIERS:
                return "user name"
    return ""


def person_name_column(name: str) -> str:
    """"" or why the column's name says it holds a person's name (or a user name), whatever its values.

    A person's name: a one-word name part (`surname`, `Vorname`, `achternaam`, `fname`, `prénom`, `cognome`,
    `apellidos`, `nazwisko`, `imię`...); a name word (`name`, `nm`, `nombre`, `nom`, `nome`, `naam`, `navn`,
    `namn`) right after a person qualifier (`first_name`, `last_nm`, `patientName`, `mothers_maiden_name`,
    `next_of_kin_name`) or right before one, little words allowed (`name_first`, `nom_de_famille`,
    `nombre_del_paciente`); or a name word with nothing around it but noise (`name`, `fake_name`, `name_2`,
    `name_raw`). Any other word next to the name word makes it something else's name and the rule does not
    fire: `hospital_name`, `product_name`, `city_name`, `nombre_hospital`, `file_name`, `n_name`.

    A user name (`username`, `user_name`, `login_name`, `screen_name`) identifies a person as directly as their
    name does, so it is reported too, as "user names"."""
    tokens = column_tokens(name)
    for index, token in enumerate(tokens):
        label = _compound_label(token)
        if label == "user name":
            return f"{USER_NAMES} (by its column name: user name)"
        if label:
            return f"{PERSONAL_NAMES} (by its column name: {label})"
        if token not in NAME_WORDS:
            continue
        before = tokens[index - 1] if index else ""
        if before in PERSON_PREFIXES:
            return f"{PERSONAL_NAMES} (by its column name: {PERSON_PREFIXES[before]})"
        after_index = index + 1
        while after_index < len(tokens) and tokens[after_index] in LINK_WORDS:
            after_index += 1
        after = tokens[after_index] if after_index < len(tokens) else ""
        if after in PERSON_QUALIFIERS:
            return f"{PERSONAL_NAMES} (by its column name: {PERSON_QUALIFIERS[after]})"
        if before in USER_QUALIFIERS:
            return f"{USER_NAMES} (by its column name: user name)"
        others = tokens[:index] + tokens[index + 1:]
        if all(other in NOISE_WORDS or other in NAME_WORDS or other.isdigit() for other in others):
            return f"{PERSONAL_NAMES} (by its column name: name)"
    return ""


# --- rule 2: the values are personal names ----------------------------------------------------------------

# A value holding one of these words is an organisation's or a place's name, not a person's: "Johnson Clinic",
# "St. Mary's Hospital", "Jackson Ward", "Lincoln Street", "San Jose".
ORGANISATION_WORDS = frozenset({
    # health care
    "hospital", "hospitals", "hopital", "hospitalier", "ospedale", "krankenhaus", "ziekenhuis", "sjukhus", "sykehus",
    "szpital", "clinic", "clinics", "clinique", "clinica", "klinik", "klinikum", "kliniek", "medical", "medicine",
    "medicina", "centre", "center", "centro", "zentrum", "ward", "health", "healthcare", "care", "pharmacy",
    "pharmacie", "farmacia", "apotheke", "practice", "praxis", "surgery", "hospice", "infirmary", "sanatorium",
    "nursing", "dental", "dentistry", "therapy", "rehab", "rehabilitation", "diagnostics", "imaging", "radiology",
    "oncology", "cardiology", "pediatrics", "paediatrics", "laboratory", "laboratories", "lab", "labs", "memorial",
    "nhs", "trust", "physicians", "surgeons", "doctors", "associates", "unit", "department", "dept",
    # education, companies, institutions
    "university", "universidad", "universite", "universitat", "universita", "college", "school", "academy",
    "institute", "institut", "instituto", "inc", "ltd", "llc", "llp", "plc", "gmbh", "ag", "kg", "bv", "nv", "srl",
    "sarl", "sas", "oy", "corp", "corporation", "company", "co", "limited", "group", "groupe", "grupo", "gruppe",
    "foundation", "fundacion", "stiftung", "association", "society", "partners", "services", "service", "bank",
    "hotel", "agency", "office", "ministry", "council", "systems", "solutions", "holdings", "international",
    "industries", "enterprises", "church", "parish", "club",
    # places
    "st", "saint", "sainte", "san", "santa", "santo", "sao", "street", "road", "rd", "avenue", "ave", "lane", "ln",
    "boulevard", "blvd", "square", "plaza", "heights", "county", "city", "town", "village", "island", "mount",
    "mt", "fort", "beach", "bay", "springs", "falls", "harbor", "harbour", "airport", "station",
})
# Titles, suffixes, particles and initials are allowed in a name but are no evidence of one.
TITLE_WORDS = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "fr", "sr", "sra", "srta", "jr", "ii",
    "iii", "iv", "md", "phd", "rn", "herr", "frau", "mme", "mlle", "dott", "sig", "pan", "pani", "dhr", "mevr",
})
PARTICLE_WORDS = frozenset({
    "van", "von", "de", "der", "den", "del", "della", "delle", "dei", "di", "da", "das", "do", "dos", "du", "la",
    "le", "les", "lo", "el", "al", "bin", "ibn", "bint", "ter", "ten", "te", "y", "e", "zu", "af", "av", "o",
})
# Words in Faker's lists that are also everyday category values: a value made only of these is no evidence of a
# name ("White", "May", "Washington", "Male"), although a real surname column holding "Brown" still passes on
# its other values. Some are junk in Faker's US first-name list ("Unknown", "True", "Male", "Baby", "Unnamed").
COMMON_WORDS = frozenset("""
unknown true false male female man woman men women boy girl baby infant unnamed blank none null nan na other
yes no ok good bad best fair poor low high medium small large little short long big major minor general normal
white black brown green gray grey rose red blue pink violet amber olive ruby jade hazel silver gold golden orange
ivory ebony coral pearl cherry
january february march april may june july august september october november december
monday tuesday wednesday thursday friday saturday sunday spring summer autumn fall winter
north south east west central northern southern eastern western new old
alabama alaska arizona arkansas california colorado connecticut delaware florida georgia hawaii idaho illinois
indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi missouri
montana nebraska nevada hampshire jersey mexico york carolina dakota ohio oklahoma oregon pennsylvania rhode
island tennessee texas utah vermont virginia washington wisconsin wyoming columbia district puerto rico guam
jackson madison lincoln houston dallas denver phoenix raleigh columbus cleveland orlando savannah sydney paris
london boston memphis nashville tampa fresno tucson springfield
jordan india china cuba ireland france kenya niger jamaica england scotland wales italy spain germany holland
poland japan peru chile brazil canada america african asian european hispanic latino caucasian
love justice liberty bliss lucky precious queen prince princess lady lord duke baron bishop judge doctor nurse
farmer sales art cash card sky storm river forest rock star song house church
""".split())
NAME_MIN_DISTINCT = 5  # fewer distinct names than this prove nothing (a 3-island column; Torgersen is a surname)
NAME_MIN_DISTINCT_SHARE = 0.5  # of distinct values: real surname columns have a long tail Faker's lists lack
NAME_MIN_ROW_SHARE = 0.5  # of rows: the names must also be what the column mostly holds
ORGANISATION_MIN_SHARE = 0.5  # of distinct values: a `name` column of mostly "X Clinic" names is not about people
MISSING_PLACEHOLDERS = frozenset({
    "", "-", "--", "?", ".", "n/a", "na", "n.a.", "none", "null", "nil", "nan", "unknown", "not known", "missing",
    "not available", "not applicable", "not recorded", "unk", "tbd", "redacted", "withheld", "xxx",
})
MAX_NAME_TOKENS = 4  # name tokens in one value (particles, titles and initials not counted)
MAX_DISTINCT_SCANNED = 20_000  # more distinct values than this: a fixed sample of them is read


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, last names) of every Faker person provider, normalised: lower case, accents and apostrophes
    stripped. Built once, on first use (about 0.3 s); multi-word and hyphenated entries add their parts too."""
    import faker.providers.person as person_providers

    first: set[str] = set()
    last: set[str] = set()
    for module in pkgutil.iter_modules(person_providers.__path__):
        provider = importlib.import_module(f"{person_providers.__name__}.{module.name}").Provider
        for attribute in dir(provider):
            if attribute.startswith("_") or "names" not in attribute or not attribute.startswith(
                ("first", "last", "middle", "male_last", "unisex_last")
            ):
                continue
            entries = inspect.getattr_static(provider, attribute, None)  # a property (es_CL) rebuilds the others
            if not isinstance(entries, (tuple, list, dict)):
                continue
            target = last if "last" in attribute else first
            for entry in entries:  # a dict maps names to weights: its keys are the names
                if not isinstance(entry, str):
                    continue
                for word in _normalise(entry).split():
                    word = word.strip(".")
                    target.add(word)
                    target.update(part for part in word.split("-") if len(part) > 1)
    return frozenset(first - COMMON_WORDS), frozenset(last - COMMON_WORDS)


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    first, last = name_lists()
    return (first | last) - PARTICLE_WORDS - TITLE_WORDS - ORGANISATION_WORDS


def _normalise(text: str) -> str:
    return strip_accents(text).casefold().replace("'", "")


_NAME_CHARACTERS = re.compile(r"[^\W\d_]+(?:[\s.,'’`-]+[^\W\d_]+)*[\s.,'’`-]*")  # letters and separators only
NAME, AMBIGUOUS, ORGANISATION, OTHER = "name", "ambiguous", "organisation", "other"


def classify_value(value: str) -> str:
    """"name": every word is a known first or last name (Faker's lists), a particle (van, de, O'), a title (Dr.),
    or an initial (J.), with 1-4 name words and at least one that is not also a common word; "ambiguous": the
    same but its names are all common words too ("Rose Brown", "May", "Washington"); "organisation": a word of
    ORGANISATION_WORDS is in it ("Johnson Clinic", "St. Mary's Hospital", "Jackson Ward"); "other": the rest."""
    value = str(value).strip()
    if not value or len(value) > 80 or not _NAME_CHARACTERS.fullmatch(value):
        return OTHER
    words = [word.strip(".\"()") for word in re.split(r"[\s,]+", strip_accents(value).casefold())]
    words = [word for word in words if word]
    for word in words:
        for part in re.split(r"[-.]", word):
            if part.replace("'", "") in ORGANISATION_WORDS:
                return ORGANISATION
    known = _known_names()
    names = evidence = 0
    for word in words:
        bare = word.replace("'", "")
        if bare in TITLE_WORDS or bare in PARTICLE_WORDS or re.fullmatch(r"([a-z]\.)*[a-z]", word):
            continue
        if _is_name_word(word, bare, known):
            names += 1
            evidence += 1  # common words were taken out of the lists: they land below
        elif bare in COMMON_WORDS:
            names += 1
        else:
            return OTHER
    if not 1 <= names <= MAX_NAME_TOKENS:
        return OTHER
    return NAME if evidence else AMBIGUOUS


def _is_name_word(word: str, bare: str, known: frozenset[str]) -> bool:
    if bare in known:
        return True
    if re.match(r"^[odl]'", word) and word[2:].replace("'", "") in known:  # O'Brien, D'Angelo, L'Estrange
        return True
    parts = [part for part in bare.split("-") if part]
    return len(parts) > 1 and all(part in known for part in parts)  # Smith-Jones, Jean-Pierre


@dataclass(frozen=True)
class NameEvidence:
    distinct: int  # distinct values read
    names: int  # of which personal names
    organisations: int  # of which organisation or place names
    name_rows: float  # share of rows holding a personal name (ambiguous ones included)

    @property
    def name_share(self) -> float:
        return self.names / self.distinct if self.distinct else 0.0

    @property
    def organisation_share(self) -> float:
        return self.organisations / self.distinct if self.distinct else 0.0


def name_evidence(values: pd.Series) -> NameEvidence | None:
    """How many of the column's distinct values are personal / organisation names; None for a non-text column."""
    counts = _text_counts(values)
    if counts is None or counts.empty:
        return None
    classes = pd.Series([classify_value(value) for value in counts.index], index=counts.index)
    is_name = (classes == NAME).to_numpy()
    return NameEvidence(
        distinct=len(counts), names=int(is_name.sum()), organisations=int((classes == ORGANISATION).sum()),
        name_rows=float(counts[is_name | (classes == AMBIGUOUS).to_numpy()].sum() / counts.sum()),
    )


def _is_text(values: pd.Series) -> bool:
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) or dtype == object or pd.api.types.is_string_dtype(dtype)


def _text_counts(values: pd.Series) -> pd.Series | None:
    """Counts of the distinct stripped strings of a text column, placeholders for a missing value left out (a
    column of names that is 60% "N/A" still holds names); a fixed sample of them when very many."""
    if not _is_text(values):
        return None
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = values.astype(object)
    text = values.dropna().astype(str).str.strip()
    counts = text[~text.str.lower().isin(MISSING_PLACEHOLDERS)].value_counts(sort=False)
    if len(counts) > MAX_DISTINCT_SCANNED:
        counts = counts.sample(MAX_DISTINCT_SCANNED, random_state=0)
    return counts


def person_name_values(values: pd.Series) -> str:
    """"" or why a text column's VALUES are mostly personal names, whatever the column is called.

    Each distinct value is classified by `classify_value` against the first- and last-name lists of all Faker
    person providers (placeholders such as "N/A" or "unknown" are left out, like nulls). The column holds
    personal names when all three hold:
    - at least NAME_MIN_DISTINCT (5) distinct values are names: fewer prove nothing (a 3-island column where
      "Torgersen" is also a surname);
    - they are at least half the distinct values: half, not most, because a real surname column has a long tail
      that Faker's lists lack, and names that are also common words ("Brown", "May") do not count;
    - the rows holding names (common-word names included) are at least half the rows: a column of categories
      with a few name-like stray entries is not a name column.
    Organisation and place names ("Johnson Clinic", "St. Mary's Hospital", "Jackson Ward", "Lincoln Street",
    "San Jose") are not personal names: a value holding any word of ORGANISATION_WORDS (hospital, clinic,
    medical, centre/center, ward, health, care, pharmacy, university, school, inc, ltd, llc, gmbh, group,
    foundation, practice, surgery, St., street...) is an organisation's or a place's name. Categories made of
    words that are names too (race "White", month "May", state "Washington", sex "Male") do not fire: common
    words are no evidence."""
    evidence = name_evidence(values)
    return _name_values_reason(evidence) if evidence else ""


def _name_values_reason(evidence: NameEvidence) -> str:
    if (
        evidence.names >= NAME_MIN_DISTINCT and evidence.name_share >= NAME_MIN_DISTINCT_SHARE
        and evidence.name_rows >= NAME_MIN_ROW_SHARE
    ):
        return (
            f"{PERSONAL_NAMES} ({evidence.name_share:.0%} of {evidence.distinct} distinct values, "
            f"{evidence.name_rows:.0%} of rows, are first or last names in Faker's name lists)"
        )
    return ""


# --- rule 3: other direct identifiers by value ------------------------------------------------------------

ID_MIN_MATCH_SHARE = 0.95  # of rows: a format must hold on (almost) every value
RECORD_NUMBER_MIN_DISTINCT_SHARE = 0.5  # codes that repeat a lot are categories (products, diagnoses), not ids
RECORD_NUMBER_MIN_DISTINCT = 20
CHECKSUM_MIN_VALUES = 5  # a bare check digit passes 1 time in 10 by chance: read at least this many values

_SSN = re.compile(r"^(?!000|666|9\d\d)\d{3}[- ](?!00)\d{2}[- ](?!0000)\d{4}$")
# HMRC: suffix A-D; test and temporary numbers (ZZ..T, as Faker writes them) use other letters: any letter.
_NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-Z]$", re.I)
_SIN = re.compile(r"^\d{3}[- ]\d{3}[- ]\d{3}$")
_DNI = re.compile(r"^([XYZ]-?)?\d{7,8}-?[A-Z]$", re.I)
_CF_DIGIT = "[0-9LMNPQRSTUV]"  # a digit, or the letter that stands for it when two codes would collide
_CODICE_FISCALE = re.compile(rf"^[A-Z]{{6}}{_CF_DIGIT}{{2}}[ABCDEHLMPRST]{_CF_DIGIT}{{2}}[A-Z]{_CF_DIGIT}{{3}}[A-Z]$", re.I)
_NIR = re.compile(r"^[12] ?\d{2} ?(0[1-9]|1[0-2]|[2-9]\d) ?(\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}$", re.I)
_PERSONNUMMER = re.compile(r"^(\d{2})?\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01]|[6-9]\d)[-+]\d{4}$")
_IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")
_IBAN_TEXT = re.compile(r"^[A-Z]{2}\d{2}([ -]?[A-Z0-9]){10,30}$", re.I)
_CARD = re.compile(r"^\d{4}([ -]?\d{2,6}){2,4}$|^\d{12,19}$")
_RECORD_NUMBER = re.compile(r"^[A-Z]{1,6}[-_/#. ]?\d{4,12}[A-Z]?$", re.I)


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit (payment cards, Canadian SIN, Swedish personnummer, IMEI)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    iban = re.sub(r"[\s-]", "", text).upper()
    if not _IBAN.match(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


def _dni_valid(text: str) -> bool:
    code = text.upper().replace("-", "")
    number = str("XYZ".index(code[0])) + code[1:-1] if code[0] in "XYZ" else code[:-1]  # NIE: X/Y/Z → 0/1/2
    return len(number) == 8 and "TRWAGMYFPDXBNJZSQVHLCKE"[int(number) % 23] == code[-1]


_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                   [1, 0, 5, 7, 9, 13, 15, 17, 19, 21] + [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8,
                                                          12, 14, 16, 10, 22, 25, 24, 23]))


def _codice_fiscale_valid(text: str) -> bool:
    code = text.upper()
    total = sum(
        _CF_ODD[char] if index % 2 == 0 else (int(char) if char.isdigit() else ord(char) - ord("A"))
        for index, char in enumerate(code[:15])
    )
    return chr(ord("A") + total % 26) == code[15]


def _nir_valid(text: str) -> bool:
    code = text.replace(" ", "").upper().replace("2A", "19", 1).replace("2B", "18", 1)
    if not code.isdigit() or len(code) != 15:
        return False
    return 97 - int(code[:13]) % 97 == int(code[13:])


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


# (reason, format, check or None, minimum values read): national ids first (a UK NI number is also shaped like a
# record number), record numbers last.
_CONTENT_RULES = (
    (f"{NATIONAL_IDS} (US SSN format)", _SSN, None, 1),
    (f"{NATIONAL_IDS} (UK National Insurance number format)", _NINO, None, 1),
    (f"{NATIONAL_IDS} (Canadian SIN, check digit valid)", _SIN, lambda text: luhn_valid(_digits(text)), CHECKSUM_MIN_VALUES),
    (f"{NATIONAL_IDS} (Spanish DNI/NIE, check letter valid)", _DNI, _dni_valid, 1),
    (f"{NATIONAL_IDS} (Italian codice fiscale, check letter valid)", _CODICE_FISCALE, _codice_fiscale_valid, 1),
    (f"{NATIONAL_IDS} (French social security number NIR, key valid)", _NIR, _nir_valid, 1),
    (f"{NATIONAL_IDS} (Swedish personnummer, check digit valid)", _PERSONNUMMER,
     lambda text: luhn_valid(_digits(text)[-10:]), CHECKSUM_MIN_VALUES),
    (f"{IBANS} (IBAN, checksum valid)", _IBAN_TEXT, iban_valid, 1),
    (f"{CARD_NUMBERS} (12-19 digits, Luhn check digit valid)", _CARD,
     lambda text: 12 <= len(_digits(text)) <= 19 and luhn_valid(_digits(text)), CHECKSUM_MIN_VALUES),
)


def identifier_by_content(values: pd.Series) -> str:
    """"" or why the VALUES are direct identifiers other than names, phone numbers and e-mail addresses.

    A format must hold on at least 95% of the rows. National id numbers: US SSN (3-2-4 digits with separators,
    no 000/666/9xx area), UK National Insurance number, Canadian SIN (3-3-3 digits with separators, Luhn),
    Spanish DNI/NIE (check letter), Italian codice fiscale (check letter), French NIR (key), Swedish personnummer
    (Luhn). Bank accounts: IBAN (mod-97 checksum). Payment cards: 12-19 digits (Maestro has 12), Luhn valid.
    Record numbers: 1-6 letters then 4-12 digits (`MRN-004512`, `P0001234`, `A12345678`), at least 20 distinct values and at
    least half the values distinct; codes that repeat a lot are categories. Not identifiers here: 5-digit ZIP
    codes (quasi-identifiers), dates, decimals, short codes like ICD-10 `E11.9`, bare 9-digit numbers (they
    are read as phone numbers elsewhere) and numeric columns other than integer card numbers."""
    counts = _id_counts(values)
    if counts is None or counts.empty:
        return ""
    texts = pd.Series(counts.index, dtype=object)
    weights = counts.to_numpy()
    total = weights.sum()
    for reason, pattern, check, minimum in _CONTENT_RULES:
        if total < minimum:
            continue
        shaped = texts.str.fullmatch(pattern).to_numpy(dtype=bool)
        if weights[shaped].sum() < ID_MIN_MATCH_SHARE * total:
            continue
        valid = shaped.copy()
        if check is not None:
            valid[shaped] = [check(text) for text in texts[shaped]]
        if weights[valid].sum() >= ID_MIN_MATCH_SHARE * total:
            return reason
    shaped = texts.str.fullmatch(_RECORD_NUMBER).to_numpy(dtype=bool)
    distinct_share = len(counts) / total
    if (
        weights[shaped].sum() >= ID_MIN_MATCH_SHARE * total and len(counts) >= RECORD_NUMBER_MIN_DISTINCT
        and distinct_share >= RECORD_NUMBER_MIN_DISTINCT_SHARE
    ):
        return f"{RECORD_NUMBERS} (letters then 4 or more digits, {distinct_share:.0%} distinct values)"
    return ""


def _id_counts(values: pd.Series) -> pd.Series | None:
    if pd.api.types.is_integer_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        values = values.dropna().astype(str).astype(object)  # card numbers stored as integers
    return _text_counts(values)


# --- all together -----------------------------------------------------------------------------------------

def person_or_id_reason(name: str, values: pd.Series) -> str:
    """"" or why the column identifies a person, in words a privacy officer understands.

    1. The column's name says it holds a person's name (`person_name_column`) and it holds text: identifier,
       whatever its cardinality, unless its values are mostly (at least half of the distinct values)
       organisation or place names ("Johnson Clinic", "St. Mary's Hospital": a `name` column of a table of
       clinics); a numeric column is not names (French `nombre_patients` is a number of patients).
    2. Its values are mostly personal names (`person_name_values`).
    3. Its values are national id numbers, record numbers, payment card numbers or IBANs
       (`identifier_by_content`)."""
    evidence = name_evidence(values)
    by_name = person_name_column(name)
    if by_name and (_is_text(values) or values.dropna().empty):
        if evidence is None or evidence.organisation_share < ORGANISATION_MIN_SHARE:
            return by_name
    if evidence is not None:
        reason = _name_values_reason(evidence)
        if reason:
            return reason
    return identifier_by_content(values)
