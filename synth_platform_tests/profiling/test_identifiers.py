"""Person names and direct identifiers, by column name and by value (synth_platform.profiling.identifiers)."""

from __future__ import annotations

import random
import time

import pandas as pd
import pytest
from faker import Faker
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from synth_platform.profiling import identifiers
from synth_platform.profiling.identifiers import (
    LINK_WORDS,
    NAME_WORDS,
    NOISE_WORDS,
    PERSON_PREFIXES,
    USER_QUALIFIERS,
    classify_value,
    column_tokens,
    iban_valid,
    identifier_by_content,
    luhn_valid,
    name_lists,
    person_name_column,
    person_name_values,
    person_or_id_reason,
)

PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def faker(locale: str, seed: int = 0) -> Faker:
    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def rows(values: list, n: int = 500, seed: int = 0) -> pd.Series:
    """`n` rows drawn from `values` (every value present at least once)."""
    rng = random.Random(seed)
    return pd.Series(list(values) + rng.choices(list(values), k=max(0, n - len(values))), dtype=object)


# --- rule 1: the column's name ----------------------------------------------------------------------------

PERSON_COLUMNS = {
    "first_name": "first name", "fake_first_name": "first name", "fake_last_name": "last name", "fname": "first name",
    "lname": "last name", "FNAME": "first name", "FirstName": "first name", "first-name": "first name",
    "First Name": "first name", "surname": "last name", "SURNAME": "last name", "last_nm": "last name",
    "givenName": "first name", "name_first": "first name", "name_last": "last name", "f_name": "first name",
    "forename": "first name", "fore-name": "first name", "sur-name": "last name", "family_name": "last name",
    "FamilyName": "last name", "middle_name": "middle name", "maiden_name": "maiden name",
    "mothers_maiden_name": "maiden name", "mother's name": "mother's name", "father_name": "father's name",
    "next_of_kin_name": "next-of-kin name", "nok_name": "next-of-kin name", "full_name": "full name",
    "fullname": "full name", "patient_name": "patient name", "pt_name": "patient name", "ptName": "patient name",
    "PatientFullName": "full name", "person_name": "person name", "customer_name": "customer name",
    "cust_nm": "customer name", "client_name": "customer name", "contact_name": "contact name",
    "emergency_contact_name": "contact name", "member_name": "member name", "doctor_name": "doctor name",
    "referring_physician_name": "doctor name", "nurse_name": "nurse name", "name": "name", "Name": "name",
    "NAME": "name", "fake_name": "name", "name_1": "name", "name2": "name", "name_raw": "name", "name_txt": "name",
    "pt_first_name_2": "first name", "patient_surname_raw": "last name", "PATIENT_LAST_NAME_TXT": "last name",
    "ptLastName": "last name", "Patient_FirstName": "first name",
    # German, French, Spanish, Italian, Portuguese, Dutch, Scandinavian, Polish
    "Vorname": "first name", "nachname": "last name", "Familienname": "last name", "Geburtsname": "maiden name",
    "Patientenname": "patient name", "Prénom": "first name", "prenom": "first name", "nom": "name",
    "nom_de_famille": "last name", "Nom de famille": "last name", "nom_famille": "last name",
    "nom_patient": "patient name", "nombre": "name", "apellido": "last name", "apellidos": "last name",
    "nombre_completo": "full name", "nombre_del_paciente": "patient name", "nome": "name", "cognome": "last name",
    "nome_paziente": "patient name", "sobrenome": "last name", "apelido": "last name", "nome_completo": "full name",
    "voornaam": "first name", "achternaam": "last name", "fornavn": "first name", "etternavn": "last name",
    "efternavn": "last name", "efternamn": "last name", "förnamn": "first name", "Fornamn": "first name",
    "mellomnavn": "middle name", "imię": "first name", "IMIE": "first name", "nazwisko": "last name",
    "imie_nazwisko": "first name",
}
NOT_PERSON_COLUMNS = [
    "hospital_name", "clinic_name", "ward_name", "company_name", "employer_name", "org_name", "facility_name",
    "provider_organization_name", "product_name", "drug_name", "file_name", "filename", "FileName", "city_name",
    "street_name", "country_name", "state_name", "nombre_hospital", "nom_hopital", "nome_ospedale",
    "HospitalName", "hostname", "table_name", "species_name", "brand_name", "team_name", "n_name", "p_name",
    "name_hospital", "patient_hospital_name", "first_visit_ward_name", "rename", "naming_scheme", "col_a", "age",
    "diagnosis", "nominal_value", "surnameless",
]


@pytest.mark.parametrize("column, label", PERSON_COLUMNS.items())
def test_column_names_that_hold_a_persons_name(column, label):
    assert person_name_column(column) == f"personal names (by its column name: {label})"


@pytest.mark.parametrize("column", ["username", "user_name", "UserName", "login_name", "screen_name", "userName"])
def test_user_names_are_identifiers_said_as_user_names(column):
    assert person_name_column(column) == "user names (by its column name: user name)"


@pytest.mark.parametrize("column", NOT_PERSON_COLUMNS)
def test_organisation_place_and_thing_names_are_not_persons(column):
    assert person_name_column(column) == ""


def test_column_tokens_split_snake_kebab_camel_digits_and_accents():
    assert column_tokens("fake_FirstName-2") == ["fake", "first", "name", "2"]
    assert column_tokens("PTName") == ["pt", "name"]
    assert column_tokens("Prénom") == ["prenom"]
    assert column_tokens("Førnavn") == ["fornavn"]
    assert column_tokens("mother's maiden.name1") == ["mothers", "maiden", "name", "1"]


# Name forms that say "a person's name" on their own, whatever is around them.
PERSON_NAME_FORMS = [
    ["first", "name"], ["last", "name"], ["given", "name"], ["family", "name"], ["middle", "name"],
    ["maiden", "name"], ["full", "name"], ["patient", "name"], ["customer", "name"], ["contact", "name"],
    ["doctor", "name"], ["last", "nm"], ["name", "first"], ["name", "last"], ["surname"], ["forename"], ["fname"],
    ["lname"], ["firstname"], ["lastname"], ["vorname"], ["nachname"], ["familienname"], ["prenom"],
    ["nom", "de", "famille"], ["apellido"], ["nombre", "completo"], ["cognome"], ["nome", "paziente"],
    ["sobrenome"], ["voornaam"], ["achternaam"], ["fornavn"], ["etternavn"], ["efternamn"], ["fornamn"],
    ["nazwisko"], ["imie"], ["next", "of", "kin", "name"], ["prénom"], ["förnamn"], ["imię"], ["Nom", "de", "Famille"],
]
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
AFFIXES = st.lists(st.one_of(WORD, st.sampled_from(["fake", "pt", "patient", "raw", "txt", "1", "2", "src"])), max_size=3)
STYLES = st.sampled_from(["snake", "kebab", "space", "dot", "camel", "pascal", "upper_snake"])


def _spell(tokens: list[str], style: str) -> str:
    if style in ("camel", "pascal"):
        text = "".join(token.capitalize() for token in tokens)
        return text[0].lower() + text[1:] if style == "camel" else text
    separator = {"snake": "_", "kebab": "-", "space": " ", "dot": ".", "upper_snake": "_"}[style]
    text = separator.join(tokens)
    return text.upper() if style == "upper_snake" else text


@PROPERTY
@given(form=st.sampled_from(PERSON_NAME_FORMS), prefix=AFFIXES, suffix=AFFIXES, style=STYLES)
def test_any_affixes_case_and_spelling_around_a_person_name_still_flag(form, prefix, suffix, style):
    column = _spell(prefix + form + suffix, style)
    assert person_name_column(column).startswith("personal names (by its column name:"), column


ORGANISATION_OR_PLACE = [
    "hospital", "clinic", "ward", "company", "employer", "org", "facility", "organization", "product", "drug",
    "file", "city", "street", "country", "hôpital", "ospedale", "krankenhaus", "pharmacy", "school", "bank",
]


def _innocent(word: str) -> bool:
    return not (word in PERSON_PREFIXES or word in USER_QUALIFIERS or word in LINK_WORDS or word in NAME_WORDS
                or word in NOISE_WORDS or person_name_column(word))


@PROPERTY
@given(
    org=st.sampled_from(ORGANISATION_OR_PLACE), name_word=st.sampled_from(sorted(NAME_WORDS)),
    prefix=st.lists(WORD, max_size=2), suffix=st.lists(WORD, max_size=2), org_first=st.booleans(), style=STYLES,
)
def test_organisation_and_place_names_never_flag_whatever_surrounds_them(org, name_word, prefix, suffix, org_first, style):
    assume(all(_innocent(word) for word in prefix + suffix))
    core = [org, name_word] if org_first else [name_word, org]
    column = _spell(prefix + core + suffix, style)
    assert person_name_column(column) == "", column


# --- rule 2: the values are personal names ----------------------------------------------------------------

SURNAMES_10 = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez"]


def test_a_ten_value_surname_column_flags():
    reason = person_name_values(rows(SURNAMES_10, 300))
    assert reason.startswith("personal names (90% of 10 distinct values, 100% of rows"), reason


LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "pl_PL", "sv_SE", "fi_FI", "cs_CZ"]


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("kind", ["first_name", "last_name", "name"])
def test_faker_names_under_an_innocent_column_name_flag(locale, kind):
    fake = faker(locale, seed=7)
    values = pd.Series([getattr(fake, kind)() for _ in range(400)])
    assert person_or_id_reason("col_a", values).startswith("personal names ("), (locale, kind, values.head().tolist())


def test_names_with_initials_particles_apostrophes_and_hyphens_are_names():
    for value in ["Maria Garcia", "J. Smith", "Jan van der Berg", "Pedro de la Cruz", "O'Brien", "Sean O'Connor",
                  "Anne-Marie Dupont", "Garcia, Maria", "Dr. John Smith", "José Martínez", "SMITH", "smith-jones"]:
        assert classify_value(value) == "name", value
    for value in ["Rose Brown", "May", "Washington", "White"]:
        assert classify_value(value) == "ambiguous", value
    for value in ["Johnson Clinic", "St. Mary's Hospital", "Jackson Ward", "Lincoln Medical Center", "Self-emp-inc"]:
        assert classify_value(value) == "organisation", value
    for value in ["Metformin", "E11.9", "Maria Garcia 2", "Smith & Co", "a b c d e f g", "Xqzzt", "Married-civ-spouse"]:
        assert classify_value(value) == "other", value


@pytest.fixture(scope="module")
def first_names_800() -> pd.Series:
    """~800 distinct first names over 15,000 rows, common names more frequent (like the hospital table)."""
    distinct: list[str] = []
    for locale in ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT"):
        fake = faker(locale, seed=3)
        for _ in range(3000):
            name = fake.first_name()
            if name not in distinct:
                distinct.append(name)
            if len(distinct) == 800:
                break
        if len(distinct) == 800:
            break
    rng = random.Random(5)
    weights = [1 / (rank + 1) for rank in range(len(distinct))]
    return pd.Series(distinct + rng.choices(distinct, weights=weights, k=15_000 - len(distinct)), dtype=object)


def test_800_first_names_over_15000_rows_flag_and_are_fast(first_names_800):
    assert first_names_800.nunique() == 800 and len(first_names_800) == 15_000
    name_lists.cache_clear()
    identifiers._known_names.cache_clear()
    started = time.perf_counter()
    reason = person_or_id_reason("col_a", first_names_800)  # first call: builds the name lists
    cold = time.perf_counter() - started
    started = time.perf_counter()
    again = person_or_id_reason("col_a", first_names_800)
    warm = time.perf_counter() - started
    print(f"\nname lists + 15,000-row scan: first call {cold:.3f} s, then {warm:.3f} s")
    assert reason.startswith("personal names (") and "of 800 distinct values" in reason
    assert again == reason
    assert warm < 0.25, warm
    assert cold < 5, cold


def test_the_hospital_table_columns_flag_by_name_whatever_the_cardinality(first_names_800):
    surnames = rows(["Smith", "Jones", "Taylor", "Brown", "Wilson", "Evans", "Thomas", "Roberts", "Walker"] * 3, 15_000)
    assert person_or_id_reason("fake_last_name", surnames) == "personal names (by its column name: last name)"
    assert person_or_id_reason("fake_first_name", first_names_800) == "personal names (by its column name: first name)"
    few = rows(["Smith", "Jones"], 15_000)  # 2 distinct values: the values alone prove nothing, the name does
    assert person_name_values(few) == ""
    assert person_or_id_reason("patient_surname", few).startswith("personal names (by its column name")


def _text_columns(frame: pd.DataFrame) -> list[str]:
    return [str(column) for column in frame.columns if frame[column].dtype == object]


def test_no_text_column_of_adult_credit_or_penguins_flags(adult, credit, penguins):
    checked = 0
    for frame in (adult, credit, penguins):
        for column in _text_columns(frame):
            values = frame[column]
            assert person_or_id_reason(column, values) == "", column
            assert person_or_id_reason("col_a", values) == "", column
            assert person_name_values(values) == "" and identifier_by_content(values) == "", column
            checked += 1
    assert checked == 9 + 5 + 3  # every text column was read


FALSE_POSITIVES = {
    "colours": ["Brown", "White", "Green", "Black", "Gray", "Rose", "Red", "Blue", "Pink", "Violet", "Amber"],
    "months": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December"],
    "weekdays": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "us_states": ["Alabama", "Alaska", "Arizona", "California", "Carolina", "Dakota", "Florida", "Georgia",
                  "Indiana", "Montana", "Nevada", "Virginia", "Washington", "West Virginia", "New York", "Texas",
                  "North Carolina", "South Dakota", "Louisiana", "Tennessee"],
    "us_cities": ["Washington", "Jackson", "Madison", "Lincoln", "Austin", "Houston", "Dallas", "Denver", "Phoenix",
                  "Charlotte", "Raleigh", "Columbus", "Cleveland", "Orlando", "Boston", "Savannah", "Chicago",
                  "Seattle", "San Jose", "Fort Worth", "Jacksonville", "Los Angeles", "Miami", "Atlanta", "Tyler",
                  "Eugene", "Florence", "Springfield", "Portland", "Memphis"],
    "sex": ["Male", "Female"],
    "sex_and_unknown": ["Male", "Female", "Unknown", "Other", "male", "female"],
    "yes_no": ["Yes", "No", "yes", "no", "Y", "N", "True", "False"],
    "drugs": ["Metformin", "Lisinopril", "Atorvastatin", "Amlodipine", "Metoprolol", "Omeprazole", "Simvastatin",
              "Losartan", "Albuterol", "Gabapentin", "Furosemide", "Aspirin", "Insulin", "Warfarin", "Prednisone"],
    "diagnosis_codes": ["E11.9", "I10", "J45.909", "N18.3", "E78.5", "F32.9", "I25.10", "K21.9"],
    "sizes_and_grades": ["Small", "Medium", "Large", "Low", "High", "Normal", "Mild", "Moderate", "Severe"],
}


@pytest.mark.parametrize("kind", FALSE_POSITIVES)
def test_everyday_categories_are_not_names(kind):
    values = rows(FALSE_POSITIVES[kind], 2000)
    assert person_or_id_reason("col_a", values) == ""
    assert person_or_id_reason("category", values.str.upper()) == ""


def test_organisation_names_made_of_person_names_are_not_persons():
    fake = faker("en_US", seed=11)
    made = []
    for index in range(300):
        surname, first = fake.last_name(), fake.first_name()
        made.append([f"{surname} Clinic", f"St. {first} Hospital", f"{surname} Ward", f"{surname} Medical Center",
                     f"{first} {surname} Health Centre", f"{surname} Pharmacy", f"{surname} & Sons Ltd",
                     f"{surname} University"][index % 8])
    values = pd.Series(made)
    assert person_name_values(values) == ""
    assert person_or_id_reason("col_a", values) == ""
    assert person_or_id_reason("name", values) == ""  # a `name` column of clinics is not about people
    assert person_or_id_reason("provider", values) == ""


def test_a_name_column_of_people_with_a_few_organisations_still_flags():
    fake = faker("en_US", seed=12)
    values = pd.Series([fake.name() for _ in range(70)] + [f"{fake.last_name()} Clinic" for _ in range(30)])
    assert person_or_id_reason("name", values) == "personal names (by its column name: name)"
    assert person_or_id_reason("col_a", values).startswith("personal names (")


def test_placeholders_do_not_hide_names_but_names_must_be_what_the_column_mostly_holds():
    fake = faker("en_US", seed=13)
    names = [fake.name() for _ in range(200)]
    assert person_name_values(pd.Series(names + ["N/A"] * 300 + ["unknown"] * 200 + [""] * 100)).startswith(
        "personal names (")
    strays = rows(SURNAMES_10, 100).tolist() + ["Self-referral"] * 400  # 10 names in 20% of rows
    assert person_name_values(pd.Series(strays)) == ""
    assert person_name_values(pd.Series(rows(SURNAMES_10, 400).tolist() + ["Self-referral"] * 100)).startswith(
        "personal names (")


def test_non_text_columns_are_never_names():
    assert person_or_id_reason("nombre_patients", pd.Series(range(200))) == ""  # French: number of patients
    assert person_name_values(pd.Series([1.5, 2.5] * 50)) == ""
    assert person_or_id_reason("first_name", pd.Series([None] * 5, dtype=object)).startswith("personal names")
    assert person_or_id_reason("first_name", pd.Series(["N/A", "unknown"] * 5)).startswith("personal names")
    categorical = pd.Series(pd.Categorical(rows(SURNAMES_10, 300)))
    assert person_or_id_reason("col_a", categorical).startswith("personal names (")
    assert person_or_id_reason("col_a", rows(SURNAMES_10, 300).astype("string")).startswith("personal names (")


# --- rule 3: other direct identifiers by value ------------------------------------------------------------

def _generated(locale: str, method: str, n: int = 300, seed: int = 1, **kwargs) -> pd.Series:
    fake = faker(locale, seed)
    return pd.Series([getattr(fake, method)(**kwargs) for _ in range(n)])


@pytest.mark.parametrize("locale, method, expected", [
    ("en_US", "ssn", "national id numbers (US SSN format)"),
    ("en_GB", "ssn", "national id numbers (UK National Insurance number format)"),
    ("en_CA", "ssn", "national id numbers (Canadian SIN, check digit valid)"),
    ("es_ES", "nif", "national id numbers (Spanish DNI/NIE, check letter valid)"),
    ("es_ES", "nie", "national id numbers (Spanish DNI/NIE, check letter valid)"),
    ("it_IT", "ssn", "national id numbers (Italian codice fiscale, check letter valid)"),
    ("fr_FR", "ssn", "national id numbers (French social security number NIR, key valid)"),
    ("sv_SE", "ssn", "national id numbers (Swedish personnummer, check digit valid)"),
    ("de_DE", "iban", "bank account numbers (IBAN, checksum valid)"),
    ("en_GB", "iban", "bank account numbers (IBAN, checksum valid)"),
    ("fr_FR", "iban", "bank account numbers (IBAN, checksum valid)"),
    ("en_US", "credit_card_number", "payment card numbers (12-19 digits, Luhn check digit valid)"),
])
def test_national_ids_ibans_and_card_numbers_flag(locale, method, expected):
    values = _generated(locale, method)
    assert identifier_by_content(values) == expected
    assert person_or_id_reason("col_a", values) == expected


def test_checksums_matter():
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and not iban_valid("GB82 WEST 1234 5698 7654 33")
    cards = _generated("en_US", "credit_card_number", card_type="visa16")
    broken = cards.map(lambda card: card[:-1] + str((int(card[-1]) + 1) % 10))  # wrong check digit
    assert identifier_by_content(broken) == ""
    ibans = _generated("de_DE", "iban")
    assert identifier_by_content(ibans.map(lambda iban: iban[:2] + "00" + iban[4:])) == ""
    codes = _generated("it_IT", "ssn")
    assert identifier_by_content(codes.map(lambda code: code[:15] + ("A" if code[15] != "A" else "B"))) == ""
    nir = _generated("fr_FR", "ssn")
    assert identifier_by_content(nir.map(lambda code: code[:13] + f"{(int(code[13:]) % 97) + 1:02d}")) == ""


def test_card_numbers_stored_as_integers_and_with_spaces_flag():
    cards = _generated("en_US", "credit_card_number", card_type="visa16")
    assert identifier_by_content(cards.astype("int64")).startswith("payment card numbers")
    spaced = cards.map(lambda card: " ".join(card[i:i + 4] for i in range(0, 16, 4)))
    assert identifier_by_content(spaced).startswith("payment card numbers")


@pytest.mark.parametrize("make", [
    lambda i: f"MRN-{i:06d}", lambda i: f"P{i:07d}", lambda i: f"A{i:08d}", lambda i: f"pt_{i:05d}",
])
def test_record_numbers_flag_when_mostly_distinct(make):
    rng = random.Random(2)
    values = pd.Series([make(rng.randrange(10**5)) for _ in range(1000)])
    reason = identifier_by_content(values)
    assert reason.startswith("record numbers (letters then 4 or more digits,"), reason
    repeated = pd.Series([make(number) for number in range(30)] * 40)  # 30 codes over 1,200 rows: a category
    assert identifier_by_content(repeated) == ""


def test_zip_codes_dates_decimals_phones_and_repeating_codes_are_not_direct_identifiers():
    rng = random.Random(3)
    cases = {
        "zip": [f"{rng.randrange(1000, 99999):05d}" for _ in range(1000)],
        "zip_plus_4": [f"{rng.randrange(10**5):05d}-{rng.randrange(10**4):04d}" for _ in range(1000)],
        "iso_dates": [f"20{rng.randrange(10, 25)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}" for _ in range(1000)],
        "decimals": [f"{rng.uniform(-1000, 1000):.4f}" for _ in range(1000)],
        "phones": [f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{rng.randrange(10**4):04d}" for _ in range(1000)],
        "icd10": [rng.choice(["E11.9", "I10", "J45.909", "N18.3", "E78.5"]) for _ in range(1000)],
        "fiscal_years": [rng.choice(["FY2021", "FY2022", "FY2023", "FY2024"]) for _ in range(1000)],
        "bare_9_digits": [f"{rng.randrange(10**9):09d}" for _ in range(1000)],
        "random_16_digits": [f"{rng.randrange(10**15, 10**16)}" for _ in range(1000)],
    }
    for kind, values in cases.items():
        assert identifier_by_content(pd.Series(values)) == "", kind
        assert person_or_id_reason("col_a", pd.Series(values)) == "", kind


def test_a_few_stray_values_do_not_hide_an_identifier_but_a_mixed_column_is_not_one():
    ssns = list(_generated("en_US", "ssn", n=400))
    assert identifier_by_content(pd.Series(ssns[:390] + ["pending"] * 10)).startswith("national id numbers")
    assert identifier_by_content(pd.Series(ssns[:300] + ["pending"] * 100)) == ""
    assert identifier_by_content(pd.Series(ssns + [None] * 100)).startswith("national id numbers")  # nulls aside
    assert identifier_by_content(pd.Series(ssns + ["N/A", "unknown", "-"] * 100)).startswith("national id numbers")
