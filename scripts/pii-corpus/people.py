"""People and places for the PII evaluation corpus: person names from the US census 1990 lists
(`names`) and per-country first/last name statistics (`names-dataset`), email addresses made from
them, street addresses (USPS Publication 28 suffixes from `usaddress-scourgify`, place names from
libphonenumber's geocoding data) and dates of birth.

Each function takes a `random.Random` and returns `(value, meta)`, as in entities.py.
"""

import bisect
import functools
import itertools
import json
import os
import random
import string
import unicodedata
from pathlib import Path

import names as census
import pycountry

CACHE = Path(os.environ.get("PII_CORPUS_CACHE", Path(__file__).resolve().parents[2] / ".cache" / "pii-corpus"))

# Countries whose names-dataset lists are used, with enough Latin-script names (others are mostly
# in their own script, which the carriers here, written in English, do not hold).
NAME_COUNTRIES = [
    "GB", "IE", "CA", "AU", "DE", "FR", "ES", "IT", "PT", "NL", "BE", "PL", "SE", "NO", "DK",
    "FI", "MX", "BR", "AR", "CO", "CL", "PE", "IN", "PK", "BD", "NG", "GH", "ZA", "PH", "ID",
    "MY", "TR", "HU", "CZ", "HR", "JP", "CN", "KE", "EG", "MA",
]


def _latin(s):
    return all(c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in s) and s.isalpha() and len(s) > 1


def _census(fname, top):
    """(names, cumulative weights) of a census list, title-cased (`MCDONALD` -> `McDonald`)."""
    path = Path(census.__file__).parent / fname
    out, weights = [], []
    for line in path.read_text().splitlines()[:top]:
        name, freq = line.split()[:2]
        n = name.capitalize()
        if n.startswith("Mc") and len(n) > 2:
            n = "Mc" + n[2:].capitalize()
        out.append(n)
        weights.append(float(freq))
    return out, list(itertools.accumulate(weights))


@functools.cache
def census_lists():
    return {
        "first": [_census("dist.male.first", 1000), _census("dist.female.first", 2000)],
        "last": _census("dist.all.last", 10000),
    }


@functools.cache
def world_lists():
    """{country: {"first": [...], "last": [...]}} from names-dataset (top 150 of each), cached as
    JSON under .cache because loading the dataset takes seconds."""
    path = CACHE / "names-dataset-top.json"
    if path.exists():
        return json.loads(path.read_text())
    from names_dataset import NameDataset

    nd = NameDataset()
    out = {}
    for c in NAME_COUNTRIES:
        first = nd.get_top_names(n=150, country_alpha2=c).get(c, {})
        last = nd.get_top_names(n=150, country_alpha2=c, use_first_names=False).get(c, [])
        fl = [n for n in first.get("M", []) + first.get("F", []) if _latin(n)]
        ll = [n for n in last if _latin(n)]
        if len(fl) >= 20 and len(ll) >= 20:
            out[c] = {"first": fl, "last": ll}
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, sort_keys=True))
    return out


def _weighted(rng, lst):
    names, cum = lst
    return names[bisect.bisect_left(cum, rng.random() * cum[-1])]


def person(rng, country=None):
    """(first, last, country): census-weighted US names half the time, else a names-dataset
    country's top names."""
    world = world_lists()
    if country is None:
        country = "US" if rng.random() < 0.45 else rng.choice(sorted(world))
    if country in world:
        w = world[country]
        return rng.choice(w["first"]), rng.choice(w["last"]), country
    c = census_lists()
    return _weighted(rng, rng.choice(c["first"])), _weighted(rng, c["last"]), "US"


TITLES = ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof.", "Mr", "Ms", "Dr"]


def name(rng, first, last, form=None):
    """A written form of a person's name. Titles are outside the span (see carriers)."""
    form = form or rng.choice(["full", "full", "full", "full", "last-first", "initial", "middle", "upper", "first", "lower"])
    initial = rng.choice(string.ascii_uppercase)
    text = {
        "full": f"{first} {last}",
        "last-first": f"{last}, {first}",
        "initial": f"{first[0]}. {last}",
        "middle": f"{first} {initial}. {last}",
        "upper": f"{first} {last}".upper(),
        "first": first,
        "lower": f"{first} {last}".lower(),
        "last": last,
    }[form]
    return text, {"format": form}


def _ascii(s):
    return unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower()


# Mailbox providers and company domain shapes (public facts), with real TLDs and ccSLDs.
FREEMAIL = [
    "gmail.com", "outlook.com", "hotmail.com", "yahoo.com", "icloud.com", "proton.me",
    "gmx.de", "web.de", "yahoo.co.uk", "orange.fr", "libero.it", "wp.pl", "mail.ru",
    "yandex.ru", "qq.com", "163.com", "rediffmail.com", "uol.com.br", "bigpond.com", "naver.com",
]
TLDS = ["com", "io", "co.uk", "de", "fr", "com.au", "co.in", "com.br", "nl", "es", "it", "ca", "org", "net", "ch", "se", "co.za", "co.jp"]
COMPANY_WORDS = ["acme", "northwind", "contoso", "globex", "initech", "umbrella", "stark", "wayne", "tyrell", "hooli", "vandelay", "soylent", "cyberdyne", "wonka", "oceanic"]


def email(rng, first=None, last=None):
    if first is None:
        first, last, _ = person(rng)
    f, l = _ascii(first) or "user", _ascii(last) or "mail"
    local = rng.choice([
        f"{f}.{l}", f"{f}{l}", f"{f[0]}{l}", f"{f}_{l}", f"{f}.{l}{rng.randint(1, 99)}",
        f"{f}{rng.randint(1960, 2005)}", f"{l}.{f}", f"{f}+{rng.choice(['news', 'shop', 'work'])}",
        f"{f[0]}.{l}", f"{f}-{l}",
    ])
    if rng.random() < 0.5:
        domain = rng.choice(FREEMAIL)
    else:
        domain = rng.choice(COMPANY_WORDS) + rng.choice(["", "-corp", "labs", "group"]) + "." + rng.choice(TLDS)
        if rng.random() < 0.2:
            domain = rng.choice(["mail.", "eu.", "corp.", "student."]) + domain
    text = f"{local}@{domain}"
    form = "plain"
    if rng.random() < 0.08:
        text, form = text.upper(), "upper"
    elif rng.random() < 0.1:
        text, form = local.capitalize() + "@" + domain, "capitalised"
    return text, {"format": form}


@functools.cache
def places():
    """{country alpha-2: [place names]} from libphonenumber's English geocoding data (cached as
    JSON under .cache: the data takes seconds to load)."""
    path = CACHE / "geocoder-places.json"
    if path.exists():
        return json.loads(path.read_text())
    out = _places()
    CACHE.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, ensure_ascii=False, sort_keys=True))
    return out


CA_PROVINCES = {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}


def _places():
    import phonenumbers
    from phonenumbers.geodata import GEOCODE_DATA

    by_cc = {}
    for region in ["US", "GB", "DE", "AT", "CH", "FR", "ES", "IT", "NL", "IN", "AU", "CA", "BR", "MX", "PL", "IE", "SE", "BE"]:
        cc = str(phonenumbers.country_code_for_region(region))
        by_cc.setdefault(cc, []).append(region)
    out = {}
    for prefix, loc in GEOCODE_DATA.items():
        name = loc.get("en")
        if not name:
            continue
        for cc, regions in by_cc.items():
            if prefix.startswith(cc):
                for r in regions:
                    out.setdefault(r, set()).add(name)
    countries = {c.name for c in pycountry.countries}
    subdivisions = {s.name for s in pycountry.subdivisions}
    clean = {}
    for r, ns in out.items():
        keep = sorted(n for n in ns if n not in countries and n not in subdivisions and "/" not in n and len(n) < 30)
        if r == "US" or r == "CA":
            keep = [n for n in keep if ", " in n and (n[-2:] in CA_PROVINCES) == (r == "CA")]
        else:
            keep = [n for n in keep if "," not in n and " - " not in n]
        if keep:
            clean[r] = keep
    return clean


@functools.cache
def street_suffixes():
    """USPS Publication 28 street suffixes: the long forms and their standard abbreviations."""
    from scourgify.address_constants import LONGHAND_STREET_TYPES

    common = ["ST", "AVE", "RD", "DR", "LN", "BLVD", "CT", "PL", "WAY", "TER", "CIR", "PKWY", "HWY", "SQ", "TRL"]
    long_forms = sorted({v.title() for v in LONGHAND_STREET_TYPES.values()})
    return long_forms, [c.title() for c in common], [LONGHAND_STREET_TYPES[c].title() for c in common if c in LONGHAND_STREET_TYPES]


UNITS = ["Apt", "Apt.", "Suite", "Ste", "Unit", "#", "Fl", "Rm"]
ORDINAL = lambda n: f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def _place(rng, country):
    p = places().get(country)
    return rng.choice(p) if p else rng.choice([s.name for s in pycountry.subdivisions.get(country_code=country)])


def _uk_postcode(rng):
    letters = "ABCDEFGHJKLMNOPRSTUWYZ"
    inward = "ABDEFGHJLNPQRSTUWXYZ"
    area = rng.choice(letters) + (rng.choice(letters) if rng.random() < 0.7 else "")
    return f"{area}{rng.randint(1, 20)} {rng.randint(0, 9)}{rng.choice(inward)}{rng.choice(inward)}"


def address(rng, country=None):
    """A street address in the country's written form, on one line or several."""
    country = country or rng.choice(["US", "US", "US", "GB", "DE", "FR", "ES", "IT", "NL", "CA", "AU", "IN", "AT", "CH", "IE"])
    first, last, _ = person(rng, country if country in world_lists() else None)
    num = rng.choice([rng.randint(1, 99), rng.randint(100, 9999)])
    sep = "\n" if rng.random() < 0.25 else ", "
    if country in ("US", "CA"):
        long_forms, common_abbr, common_long = street_suffixes()
        base = rng.choice([last, last, ORDINAL(rng.randint(1, 120)), first + " " + last])
        suffix = rng.choice(common_abbr + common_long + long_forms[:40] if rng.random() < 0.3 else common_abbr + common_long)
        direction = rng.choice(["", "", "", "N ", "S ", "E ", "W ", "NW "])
        unit = rng.choice(["", "", "", f" {rng.choice(UNITS)} {rng.randint(1, 40)}{rng.choice(['', 'A', 'B'])}"])
        city_state = _place(rng, country)
        if country == "US":
            z = f"{rng.randint(501, 99950):05d}" + (f"-{rng.randint(1, 9999):04d}" if rng.random() < 0.2 else "")
        else:
            L = "ABCEGHJKLMNPRSTVXY"
            z = f"{rng.choice(L)}{rng.randint(0, 9)}{rng.choice(L)} {rng.randint(0, 9)}{rng.choice(L)}{rng.randint(0, 9)}"
        text = f"{num} {direction}{base} {suffix}{unit}{sep}{city_state} {z}"
    elif country in ("GB", "IE", "AU"):
        suffix = rng.choice(["Road", "Street", "Lane", "Avenue", "Close", "Drive", "Gardens", "Crescent", "Way", "Place", "Terrace", "Grove", "Rd", "St", "Parade"])
        flat = rng.choice(["", "", "", f"Flat {rng.randint(1, 30)}{sep}"])
        city = _place(rng, country)
        if country == "GB":
            tail = f"{city} {_uk_postcode(rng)}"
        elif country == "IE":
            tail = f"{city}, {rng.choice('ACDEFHKNPRTVWXY')}{rng.randint(10, 99)} {''.join(rng.choice('ACDEFHKNPRTVWXY0123456789') for _ in range(4))}"
        else:
            tail = f"{city} {rng.choice(['NSW', 'VIC', 'QLD', 'WA', 'SA', 'TAS', 'ACT'])} {rng.randint(800, 7999):04d}"
        text = f"{flat}{num} {last} {suffix}{sep}{tail}"
    elif country in ("DE", "AT", "CH", "NL"):
        if country == "NL":
            street = last + rng.choice(["straat", "weg", "laan", "plein", "gracht", "kade"])
            code = f"{rng.randint(1000, 9999)} {rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}"
        else:
            street = rng.choice([last + rng.choice(["straße", "str.", "weg", "allee", "gasse", "ring", "platz"]), f"{first}-{last}-Straße", f"Am {last}berg"])
            code = f"{rng.randint(1067, 99998):05d}" if country == "DE" else f"{rng.randint(1010, 9999)}"
        suffix = rng.choice(["", "", "a", "b"])
        text = f"{street} {num}{suffix}{sep}{code} {_place(rng, country)}"
    elif country == "FR":
        way = rng.choice(["rue", "avenue", "boulevard", "allée", "place", "impasse", "chemin", "quai"])
        named = rng.choice([f"{first} {last}", last, f"du Général {last}", f"de la {rng.choice(['Gare', 'République', 'Liberté', 'Paix', 'Fontaine'])}"])
        text = f"{num}{rng.choice(['', '', ' bis', ' ter'])} {way} {named}{sep}{rng.randint(1000, 95999):05d} {_place(rng, 'FR')}"
    elif country == "ES":
        way = rng.choice(["Calle", "C/", "Avenida", "Avda.", "Paseo", "Plaza"])
        floor = rng.choice(["", f", {rng.randint(1, 9)}º {rng.choice('ABCD')}", f", {rng.randint(1, 9)}º{rng.choice(['izq.', 'dcha.'])}"])
        text = f"{way} {first} {last}, {num}{floor}{sep}{rng.randint(1000, 52999):05d} {_place(rng, 'ES')}"
    elif country == "IT":
        way = rng.choice(["Via", "Viale", "Piazza", "Corso", "Vicolo"])
        text = f"{way} {first} {last} {num}{sep}{rng.randint(10, 98099):05d} {_place(rng, 'IT')} ({''.join(rng.choice(string.ascii_uppercase) for _ in range(2))})"
    else:  # IN
        area = rng.choice([f"{last} Nagar", f"{first} Colony", f"Sector {rng.randint(1, 80)}", f"{last} Layout"])
        road = rng.choice([f"{last} Road", "MG Road", f"{rng.randint(1, 20)}th Cross", f"{first} Marg"])
        text = f"{rng.choice(['', 'Flat ', 'House No. ', 'Plot '])}{num}, {road}, {area}{sep}{_place(rng, 'IN')} {rng.randint(110001, 855999)}"
    return text, {"region": country, "format": "multiline" if "\n" in text else "one-line"}


MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]


def date_of_birth(rng):
    """A date of birth between 1935 and 2007, in a form from ISO to spelled-out months."""
    y, m, d = rng.randint(1935, 2007), rng.randint(1, 12), rng.randint(1, 28)
    form = rng.choice(["iso", "us", "eu-dots", "eu-slash", "long", "long-us", "short-month", "us-short-year", "dashes-eu"])
    text = {
        "iso": f"{y}-{m:02d}-{d:02d}",
        "us": f"{m:02d}/{d:02d}/{y}",
        "eu-dots": f"{d:02d}.{m:02d}.{y}",
        "eu-slash": f"{d}/{m}/{y}",
        "long": f"{d} {MONTHS[m - 1]} {y}",
        "long-us": f"{MONTHS[m - 1]} {d}, {y}",
        "short-month": f"{d:02d}-{MONTHS[m - 1][:3]}-{y}",
        "us-short-year": f"{m}/{d}/{y % 100:02d}",
        "dashes-eu": f"{d:02d}-{m:02d}-{y}",
    }[form]
    return text, {"format": form}
