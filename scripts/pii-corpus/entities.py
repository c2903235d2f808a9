"""Entity values for the PII evaluation corpus, drawn from external data (libphonenumber's
metadata through `phonenumbers`, the IBAN registry through `schwifty`, check digits from
`python-stdnum`, US census and per-country name statistics) and written in the forms people type.

Every function takes a `random.Random` and returns `(value, meta)`: the exact text of the entity
and a dict of facts kept in the corpus (region, format) for per-group scores.
"""

import functools
import random
import string

import phonenumbers as pn
import pycountry
from phonenumbers import PhoneNumberFormat as PF
from phonenumbers import PhoneNumberType as PT
from phonenumbers import geocoder
from schwifty import IBAN
from schwifty import registry as iban_registry
from stdnum import luhn
from stdnum.us import ssn as us_ssn

# The 40 most populous countries (UN World Population Prospects 2024, mid-2024 estimates), in
# order. Phones are drawn half from these and half from every other region of libphonenumber,
# so the per-region table has support for each of them.
TOP40 = [
    "IN", "CN", "US", "ID", "PK", "NG", "BR", "BD", "RU", "ET", "MX", "JP", "EG", "PH", "CD",
    "VN", "IR", "TR", "DE", "TH", "TZ", "GB", "FR", "ZA", "IT", "KE", "MM", "CO", "KR", "SD",
    "UG", "ES", "DZ", "IQ", "AR", "AF", "YE", "CA", "PL", "AO",
]

PHONE_TYPES = [PT.FIXED_LINE, PT.MOBILE, PT.FIXED_LINE_OR_MOBILE, PT.TOLL_FREE, PT.VOIP]


def other_regions():
    """libphonenumber's regions outside TOP40 that have a fixed-line or mobile example."""
    out = []
    for r in sorted(pn.SUPPORTED_REGIONS):
        if r in TOP40 or r == "001":
            continue
        if pn.example_number_for_type(r, PT.MOBILE) or pn.example_number_for_type(
            r, PT.FIXED_LINE
        ):
            out.append(r)
    return out


OTHER_REGIONS = other_regions()


def _vary(rng, example):
    """A valid number near the region's example: its trailing digits redrawn until libphonenumber
    accepts the number (the example itself after 30 tries)."""
    nsn = pn.national_significant_number(example)
    keep = min(3, max(1, len(nsn) - 4))
    for _ in range(30):
        digits = nsn[:keep] + "".join(rng.choice(string.digits) for _ in nsn[keep:])
        n = pn.PhoneNumber(country_code=example.country_code, national_number=int(digits))
        if example.italian_leading_zero or nsn.startswith("0"):
            n.italian_leading_zero = True
            n.number_of_leading_zeros = len(digits) - len(digits.lstrip("0")) or None
        if pn.is_valid_number(n) and pn.national_significant_number(n) == digits:
            return n
    return example


def _regroup(text, sep):
    """`text` with its group separators (space, `-`) turned into `sep`."""
    return text.replace(" ", sep).replace("-", sep)


def phone(rng, region=None):
    """A phone number of `region` (drawn as described at TOP40 when None), in a random form."""
    if region is None:
        region = rng.choice(TOP40) if rng.random() < 0.5 else rng.choice(OTHER_REGIONS)
    types = [t for t in PHONE_TYPES if pn.example_number_for_type(region, t) is not None]
    example = pn.example_number_for_type(region, rng.choice(types))
    n = _vary(rng, example)
    meta = pn.PhoneMetadata.metadata_for_region(region)
    trunk = (meta.national_prefix or "") if meta else ""
    national = pn.format_number(n, PF.NATIONAL)
    intl = pn.format_number(n, PF.INTERNATIONAL)
    e164 = pn.format_number(n, PF.E164)
    cc = str(n.country_code)
    rest = intl[len(cc) + 2 :]
    forms = {
        "national": national,
        "international": intl,
        "e164": e164,
        "intl-dashes": "+" + cc + "-" + _regroup(rest, "-"),
        "intl-dots": "+" + cc + "." + _regroup(rest, "."),
        "intl-00": "00" + cc + " " + rest,
        "intl-compact-cc": "+" + cc + " " + pn.national_significant_number(n),
    }
    digits_only = "".join(c for c in national if c.isdigit())
    if len(national.split()) > 1 or "-" in national:
        forms["national-dots"] = _regroup(national, ".")
        forms["national-dashes"] = _regroup(national, "-")
        forms["national-compact"] = digits_only
    if trunk == "0":
        forms["intl-trunk-0"] = "+" + cc + " (0)" + rest
    if cc == "1":
        nsn = pn.national_significant_number(n)
        forms["nanp-dashes"] = f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
        forms["nanp-dots"] = f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}"
        forms["nanp-1-dashes"] = f"1-{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
        forms["nanp-paren-nospace"] = f"({nsn[:3]}){nsn[3:6]}-{nsn[6:]}"
    name = rng.choice(sorted(forms))
    return forms[name], _phone_meta(region, name)


def _phone_meta(region, form):
    """Region, form, and the region's population rank where it is one of TOP40 (else 0)."""
    return {"region": region, "format": form, "rank": TOP40.index(region) + 1 if region in TOP40 else 0}


def local_phone(rng, region=None):
    """The subscriber part of a geographic number (no area code), as said after a cue
    (`Phone: 456 7890`): for NANP `456-7890`, elsewhere the number after its area code."""
    if region is None:
        region = rng.choice(TOP40) if rng.random() < 0.5 else rng.choice(OTHER_REGIONS)
    example = pn.example_number_for_type(region, PT.FIXED_LINE)
    if example is None:
        return phone(rng, region)
    n = _vary(rng, example)
    area = pn.length_of_geographical_area_code(n)
    nsn = pn.national_significant_number(n)
    sub = nsn[area:] if area else nsn[-8:] if len(nsn) > 8 else nsn
    if len(sub) < 6:
        return phone(rng, region)
    if len(sub) == 7:
        text = rng.choice([f"{sub[:3]}-{sub[3:]}", f"{sub[:3]} {sub[3:]}", f"{sub[:3]}.{sub[3:]}"])
    elif len(sub) == 8:
        text = rng.choice([f"{sub[:4]} {sub[4:]}", f"{sub[:4]}-{sub[4:]}", f"{sub[:2]} {sub[2:4]} {sub[4:6]} {sub[6:]}"])
    else:
        text = rng.choice([sub, f"{sub[:3]} {sub[3:]}", f"{sub[:len(sub)//2]} {sub[len(sub)//2:]}"])
    return text, _phone_meta(region, "local")


def extension(rng):
    """The extension text written after a number (not part of the labelled span)."""
    e = str(rng.randint(1, 9999))
    return rng.choice([f"x{e}", f" x{e}", f" ext. {e}", f" ext {e}", f", ext. {e}", f" (ext. {e})", f" Ext.{e}"])


# Payment card brands: IIN prefixes (single numbers or inclusive ranges of equal length) and the
# lengths each brand issues, from the ISO/IEC 7812 registrations the brands publish.
CARD_BRANDS = {
    "visa": ([("4",)], [13, 16, 19]),
    "mastercard": ([("51", "55"), ("2221", "2720")], [16]),
    "amex": ([("34",), ("37",)], [15]),
    "discover": ([("6011",), ("644", "649"), ("65",)], [16, 19]),
    "jcb": ([("3528", "3589")], [16, 17, 18, 19]),
    "diners": ([("300", "305"), ("3095",), ("36",), ("38", "39")], [14, 16]),
    "unionpay": ([("62",), ("81",)], [16, 17, 18, 19]),
    "maestro": ([("5018",), ("5020",), ("5038",), ("5893",), ("6304",), ("6759",), ("6761", "6763")], [12, 13, 15, 16, 19]),
    "maestro-uk": ([("6759",), ("676770",), ("676774",)], [12, 13, 15, 16, 18, 19]),
    "mir": ([("2200", "2204")], [16, 17, 18, 19]),
    "rupay": ([("60",), ("65",), ("81",), ("82",), ("508",), ("353",), ("356",)], [16]),
    "troy": ([("9792",), ("65",)], [16]),
    "verve": ([("506099", "506198"), ("650002", "650027"), ("507865", "507964")], [16, 18, 19]),
    "elo": ([("401178",), ("438935",), ("451416",), ("504175",), ("506699", "506778"), ("509000", "509999"), ("636297",), ("636368",), ("650031", "650033")], [16]),
    "hipercard": ([("606282",), ("384100",), ("384140",), ("384160",)], [16, 19]),
    "dankort": ([("5019",)], [16]),
    "uatp": ([("1",)], [15]),
    "interpayment": ([("636",)], [16, 17, 18, 19]),
    "instapayment": ([("637", "639")], [16]),
    "bc-global": ([("6541",), ("6556",)], [16]),
    "lankapay": ([("357111",)], [16]),
    "gpn": ([("1946",), ("50",), ("56",), ("58",), ("60", "63")], [16, 18, 19]),
    "humo": ([("9860",)], [16]),
    "uzcard": ([("8600",)], [16]),
}


def _groups(number):
    """How a card of this length is printed: 4-6-5 for 15, 4-6-4 for 14, fours otherwise."""
    n = len(number)
    if n == 15:
        sizes = [4, 6, 5]
    elif n == 14:
        sizes = [4, 6, 4]
    else:
        sizes = [4] * (n // 4) + ([n % 4] if n % 4 else [])
    out, i = [], 0
    for s in sizes:
        out.append(number[i : i + s])
        i += s
    return out


def card(rng, brand=None):
    """A Luhn-valid card number of a real IIN range and length, compact or grouped."""
    brand = brand or rng.choice(sorted(CARD_BRANDS))
    ranges, lengths = CARD_BRANDS[brand]
    r = rng.choice(ranges)
    if len(r) == 1:
        prefix = r[0]
    else:
        prefix = str(rng.randint(int(r[0]), int(r[1]))).zfill(len(r[0]))
    length = rng.choice(lengths)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    number = body + luhn.calc_check_digit(body)
    form = rng.choice(["compact", "spaces", "spaces", "dashes"])
    text = {"compact": number, "spaces": " ".join(_groups(number)), "dashes": "-".join(_groups(number))}[form]
    return text, {"region": brand, "format": f"{form}-{length}"}


@functools.cache
def iban_countries():
    """Countries of the IBAN registry (schwifty's), official ones only (no 'aspirational')."""
    out = []
    for c in pycountry.countries:
        try:
            iban_registry.get_iban_spec(c.alpha_2)
        except Exception:
            continue
        sample = IBAN.random(country_code=c.alpha_2, random=random.Random(0), use_registry=False)
        if not sample.is_aspirational:
            out.append(c.alpha_2)
    return sorted(out)


def iban(rng, country=None):
    """A valid IBAN of a registry country (a real bank's code where schwifty knows banks), upper,
    lower or mixed case, grouped by four or compact."""
    country = country or rng.choice(iban_countries())
    try:
        value = IBAN.random(country_code=country, random=rng)
    except Exception:
        value = IBAN.random(country_code=country, random=rng, use_registry=False)
    compact = value.compact
    form = rng.choice(["grouped", "grouped", "compact", "lower-grouped", "lower-compact", "mixed"])
    grouped = " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    text = {
        "grouped": grouped,
        "compact": compact,
        "lower-grouped": grouped.lower(),
        "lower-compact": compact.lower(),
        "mixed": compact[:2] + compact[2:].lower() if rng.random() < 0.5 else compact[:2].lower() + compact[2:],
    }[form]
    return text, {"region": country, "format": form}


def ssn(rng):
    """A US SSN of an issuable range (stdnum checks it), dashed, spaced or compact."""
    while True:
        area = rng.randint(1, 899)
        s = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if us_ssn.is_valid(s):
            break
    form = rng.choice(["dashes", "dashes", "dashes", "spaces", "compact"])
    text = {"dashes": f"{s[:3]}-{s[3:5]}-{s[5:]}", "spaces": f"{s[:3]} {s[3:5]} {s[5:]}", "compact": s}[form]
    return text, {"region": "US", "format": form}


def ipv4(rng):
    kind = rng.choice(["public", "public", "private-10", "private-192", "private-172", "cgnat"])
    if kind == "public":
        while True:
            a = rng.randint(1, 223)
            if a not in (10, 127, 169, 172, 192, 100):
                break
        o = [a, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)]
    elif kind == "private-10":
        o = [10, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)]
    elif kind == "private-192":
        o = [192, 168, rng.randint(0, 255), rng.randint(1, 254)]
    elif kind == "private-172":
        o = [172, rng.randint(16, 31), rng.randint(0, 255), rng.randint(1, 254)]
    else:
        o = [100, rng.randint(64, 127), rng.randint(0, 255), rng.randint(1, 254)]
    return ".".join(map(str, o)), {"region": "ipv4", "format": kind}


def ipv6(rng):
    import ipaddress

    prefix = rng.choice([0x2001_0DB8, 0x2A00_1450, 0x2606_4700, 0x2400_CB00, 0xFE80_0000, 0xFD12_3456, 0x2A02_0908])
    words = [prefix >> 16, prefix & 0xFFFF] + [rng.choice([0, 0, rng.randint(0, 0xFFFF)]) for _ in range(6)]
    addr = ipaddress.IPv6Address(int("".join(f"{w:04x}" for w in words), 16))
    form = rng.choice(["compressed", "compressed", "exploded", "upper", "v4-mapped"])
    if form == "exploded":
        text = addr.exploded
    elif form == "upper":
        text = addr.compressed.upper()
    elif form == "v4-mapped":
        text = "::ffff:" + ipv4(rng)[0]
    else:
        text = addr.compressed
    return text, {"region": "ipv6", "format": form}


def ip(rng):
    return ipv4(rng) if rng.random() < 0.6 else ipv6(rng)


_B62 = string.ascii_letters + string.digits
_B64URL = _B62 + "-_"


def _s(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def secret(rng):
    """An API credential in a vendor's published format."""
    kind = rng.choice(
        [
            "openai", "openai-proj", "anthropic", "aws-akid", "aws-secret", "github-pat",
            "github-fine", "gitlab", "slack-bot", "slack-user", "stripe-live", "stripe-test",
            "google-api", "sendgrid", "npm", "hf", "twilio", "digitalocean", "shopify",
            "mailgun", "jwt", "pem-rsa", "pypi", "telegram",
        ]
    )
    hexd = "0123456789abcdef"
    up = string.ascii_uppercase + string.digits
    text = {
        "openai": lambda: "sk-" + _s(rng, _B62, 48),
        "openai-proj": lambda: "sk-proj-" + _s(rng, _B64URL, 156),
        "anthropic": lambda: "sk-ant-api03-" + _s(rng, _B64URL, 93) + "AA",
        "aws-akid": lambda: rng.choice(["AKIA", "ASIA"]) + _s(rng, up, 16),
        "aws-secret": lambda: _s(rng, _B62 + "/+", 40),
        "github-pat": lambda: rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + _s(rng, _B62, 36),
        "github-fine": lambda: "github_pat_" + _s(rng, up, 22) + "_" + _s(rng, _B62, 59),
        "gitlab": lambda: "glpat-" + _s(rng, _B64URL, 20),
        "slack-bot": lambda: f"xoxb-{_s(rng, string.digits, 12)}-{_s(rng, string.digits, 13)}-{_s(rng, _B62, 24)}",
        "slack-user": lambda: f"xoxp-{_s(rng, string.digits, 12)}-{_s(rng, string.digits, 12)}-{_s(rng, string.digits, 13)}-{_s(rng, hexd, 32)}",
        "stripe-live": lambda: rng.choice(["sk_live_", "rk_live_"]) + _s(rng, _B62, 99),
        "stripe-test": lambda: "sk_test_" + _s(rng, _B62, 99),
        "google-api": lambda: "AIza" + _s(rng, _B64URL, 35),
        "sendgrid": lambda: "SG." + _s(rng, _B64URL, 22) + "." + _s(rng, _B64URL, 43),
        "npm": lambda: "npm_" + _s(rng, _B62, 36),
        "hf": lambda: "hf_" + _s(rng, string.ascii_letters, 34),
        "twilio": lambda: "SK" + _s(rng, hexd, 32),
        "digitalocean": lambda: "dop_v1_" + _s(rng, hexd, 64),
        "shopify": lambda: rng.choice(["shpat_", "shpss_"]) + _s(rng, hexd, 32),
        "mailgun": lambda: "key-" + _s(rng, hexd, 32),
        "jwt": lambda: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJ" + _s(rng, _B64URL, rng.randint(40, 120)) + "." + _s(rng, _B64URL, 43),
        "pem-rsa": lambda: "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(_s(rng, _B62 + "+/", 64) for _ in range(rng.randint(3, 8))) + "\n-----END RSA PRIVATE KEY-----",
        "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + _s(rng, _B64URL, 60),
        "telegram": lambda: f"{rng.randint(100000000, 9999999999)}:AA{_s(rng, _B64URL, 33)}",
    }[kind]()
    return text, {"region": kind, "format": kind}
