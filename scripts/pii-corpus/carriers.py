"""The messages that carry the entities: support tickets, web forms, email signatures, chat,
CSV rows, JSON payloads, email threads with quoted replies, log lines, config snippets and case
notes, each with hard negatives (order ids, timestamps, versions, prices, coordinates, tracking
numbers, hashes, UUIDs, ISBNs, dates that are not dates of birth, capitalised words, places,
products) that must pass untouched.

A carrier writes into a `Doc`, which records each labelled entity's span as it is appended.
"""

import json
import string
import uuid

from stdnum import ean, isbn, luhn

import entities as E
import people as P


class Doc:
    """Text under construction and the spans (in characters) of the entities in it."""

    def __init__(self):
        self.parts = []
        self.len = 0
        self.entities = []

    def t(self, s):
        self.parts.append(s)
        self.len += len(s)
        return self

    def e(self, kind, value_meta, **extra):
        value, meta = value_meta
        self.entities.append({"type": kind, "start": self.len, "end": self.len + len(value), "value": value, **meta, **extra})
        return self.t(value)

    def text(self):
        return "".join(self.parts)


# --- hard negatives -----------------------------------------------------------------------------

PRODUCTS = ["iPhone 15 Pro", "Galaxy S24", "ThinkPad X1 Carbon", "Kindle Paperwhite", "PlayStation 5", "Surface Laptop 7", "Pixel 9", "MacBook Air M3", "Dyson V15", "AirPods Pro 2", "Model 3", "Echo Dot", "Apple Watch Series 10", "Nintendo Switch OLED"]
SOFTWARE = ["Kubernetes", "PostgreSQL", "Jira", "Salesforce", "Slack", "Zendesk", "Terraform", "Grafana", "Outlook", "Excel", "Docker Desktop", "Chrome", "Firefox", "Windows 11", "Ubuntu 24.04", "Android 14", "iOS 18.2"]
CAPWORDS = ["Monday", "Tuesday", "Friday", "January", "Thanks", "Regards", "Cheers", "Please", "Invoice", "Support", "Billing", "Customer", "Manager", "Account", "Order", "Delivery", "Warehouse", "Team", "Urgent", "Update", "Refund", "Premium", "Gold", "Standard", "Express", "Christmas", "Easter", "Black Friday", "Apple", "Amazon", "Google", "Microsoft", "Visa", "Mastercard", "PayPal", "FedEx", "DHL", "Royal Mail"]
HEX = "0123456789abcdef"


def _d(rng, n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def _tracking(rng):
    kind = rng.choice(["ups", "usps", "fedex", "dhl", "royalmail"])
    if kind == "ups":
        return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(6)) + _d(rng, 10)
    if kind == "usps":
        return "9400 " + " ".join(_d(rng, 4) for _ in range(4)) + " " + _d(rng, 2)
    if kind == "fedex":
        return _d(rng, 12) if rng.random() < 0.5 else " ".join(_d(rng, 4) for _ in range(3))
    if kind == "dhl":
        return "JD" + _d(rng, 18)
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + _d(rng, 9) + "GB"


def _isbn(rng):
    body = "978" + _d(rng, 9)
    n = body + ean.calc_check_digit(body)
    return rng.choice([n, isbn.format(n), "ISBN " + isbn.format(n)])


def negative(rng):
    """One hard negative: text that looks like PII to a careless detector and is not."""
    k = rng.randrange(24)
    if k == 0:
        return f"order #{_d(rng, rng.randint(6, 10))}"
    if k == 1:
        return f"{rng.choice(['ORD', 'INV', 'PO', 'RMA', 'CASE'])}-{rng.randint(2019, 2026)}-{_d(rng, rng.randint(4, 7))}"
    if k == 2:
        return f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}{rng.choice(['Z', '.123Z', '+02:00', ''])}"
    if k == 3:
        return rng.choice(["v", "version ", "release ", ""]) + ".".join(str(rng.randint(0, 20)) for _ in range(rng.choice([2, 3, 3, 4])))
    if k == 4:
        cur = rng.choice(["$", "€", "£", "USD ", "EUR ", "CHF "])
        return f"{cur}{rng.randint(1, 9999):,}.{rng.randint(0, 99):02d}"
    if k == 5:
        return f"{rng.uniform(-80, 80):.{rng.choice([4, 5, 6])}f}, {rng.uniform(-179, 179):.{rng.choice([4, 5, 6])}f}"
    if k == 6:
        return _tracking(rng)
    if k == 7:
        return "".join(rng.choice(HEX) for _ in range(rng.choice([7, 12, 40, 64])))
    if k == 8:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if k == 9:
        return _isbn(rng)
    if k == 10:
        return f"{rng.choice(['due', 'delivered on', 'meeting on', 'invoice date', 'shipped'])} {P.date_of_birth(rng)[0]}"
    if k == 11:
        return rng.choice(CAPWORDS)
    if k == 12:
        return rng.choice(PRODUCTS)
    if k == 13:
        return rng.choice(SOFTWARE)
    if k == 14:
        places = P.places()
        return rng.choice(places[rng.choice(sorted(places))])
    if k == 15:
        body = _d(rng, 12)
        return "EAN " + body + ean.calc_check_digit(body)
    if k == 16:
        body = _d(rng, 15)
        bad = str((int(luhn.calc_check_digit(body)) + rng.randint(1, 9)) % 10)
        return f"ref {body}{bad}"
    if k == 17:
        return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}-{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
    if k == 18:
        return f"{rng.randint(1, 999)} {_d(rng, 3)} {_d(rng, 3)} units"
    if k == 19:
        return f"port {rng.choice([22, 80, 443, 5432, 6379, 8080, 8443, 9090])}"
    if k == 20:
        return f"build {rng.randint(10000, 99999)}.{rng.randint(100, 9999)}"
    if k == 21:
        return f"SKU {rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}-{_d(rng, 4)}-{_d(rng, 3)}"
    if k == 22:
        return f"{rng.randint(1, 99)}.{rng.randint(0, 9)}% of {rng.randint(100, 99999):,}"
    return f"ticket {_d(rng, 4)} {_d(rng, 4)}"


def negatives(rng, n):
    return [negative(rng) for _ in range(n)]


# --- entity helpers -----------------------------------------------------------------------------

PHONE_CUES = ["Phone: ", "Tel: ", "Tel.: ", "Mobile: ", "Cell: ", "call me on ", "reach me at ", "my number is ", "T: ", "M: ", "ph ", "Telefon: ", "Téléphone : ", "Teléfono: ", "WhatsApp: ", "phone ", "call ", "Contact no. "]


def phone_with_extras(doc, rng, cue=True, allow_local=True):
    """A phone number with its cue (most of the time), sometimes an extension after it, and
    sometimes only the local part (always with a cue)."""
    if cue:
        doc.t(rng.choice(PHONE_CUES))
    if cue and allow_local and rng.random() < 0.12:
        doc.e("phone", E.local_phone(rng))
        return doc
    value, meta = E.phone(rng)
    doc.e("phone", (value, meta))
    if rng.random() < 0.08:
        doc.t(E.extension(rng))
    return doc


def name_in(doc, rng, first, last, form=None, title=False):
    if title:
        doc.t(rng.choice(P.TITLES) + " ")
        form = form or rng.choice(["full", "last"])
    return doc.e("name", P.name(rng, first, last, form))


# --- carriers -----------------------------------------------------------------------------------


def ticket(rng):
    doc = Doc()
    first, last, _ = P.person(rng)
    doc.t(f"Subject: {rng.choice(['Problem with', 'Question about', 'Refund for', 'Cannot log in to', 'Delivery of'])} {negative(rng)}\n\n")
    doc.t(rng.choice(["Hi team,", "Hello,", "Dear Support,", "Hi there,"]) + "\n\n")
    doc.t(f"my {rng.choice(PRODUCTS)} ({negative(rng)}) {rng.choice(['stopped working', 'never arrived', 'was charged twice', 'arrived damaged'])} after {negative(rng)}. ")
    if rng.random() < 0.5:
        doc.t("I paid with card ").e("card", E.card(rng)).t(f" on {negative(rng)}. ")
    doc.t("Please ")
    if rng.random() < 0.5:
        doc.t("call me back: ")
        phone_with_extras(doc, rng, cue=False)
        doc.t(rng.choice([" (evenings)", "", " or email ", " – thanks. "]))
        if doc.parts[-1] == " or email ":
            doc.e("email", P.email(rng, first, last))
        doc.t(". ")
    else:
        doc.t("reply to ").e("email", P.email(rng, first, last)).t(" or ")
        phone_with_extras(doc, rng)
        doc.t(". ")
    doc.t(f"\n\nThanks,\n")
    name_in(doc, rng, first, last, form=rng.choice(["full", "full", "first", "initial"]))
    doc.t("\n")
    return doc


def web_form(rng):
    doc = Doc()
    first, last, country = P.person(rng)
    fields = [
        ("Name", lambda: name_in(doc, rng, first, last, form=rng.choice(["full", "full", "upper", "last-first"]))),
        ("Email", lambda: doc.e("email", P.email(rng, first, last))),
        ("Phone", lambda: doc.e("phone", E.phone(rng))),
        ("Address", lambda: doc.e("address", P.address(rng))),
        ("Date of birth", lambda: doc.e("dob", P.date_of_birth(rng))),
        ("Company", lambda: doc.t(rng.choice(P.COMPANY_WORDS).capitalize() + rng.choice([" Ltd", " GmbH", " Inc.", " SA"]))),
        ("Order number", lambda: doc.t(negative(rng))),
        ("Product", lambda: doc.t(rng.choice(PRODUCTS))),
        ("IBAN", lambda: doc.e("iban", E.iban(rng))),
        ("Message", lambda: doc.t(f"Please update my details before {negative(rng)}. {negative(rng)}.")),
    ]
    labels = {"Name": ["Name", "Full name", "Your name", "Contact"], "Email": ["Email", "E-mail", "Email address"], "Phone": ["Phone", "Phone number", "Telephone", "Mobile"], "Address": ["Address", "Street address", "Billing address", "Shipping address"], "Date of birth": ["Date of birth", "DOB", "Birthday", "Geburtsdatum"]}
    chosen = [f for f in fields if f[0] in ("Name", "Email", "Message") or rng.random() < 0.55]
    sep = rng.choice([": ", ": ", ":\t", " = "])
    for label, write in chosen:
        doc.t(rng.choice(labels.get(label, [label])) + sep)
        write()
        doc.t("\n")
    return doc


def signature(rng):
    doc = Doc()
    first, last, _ = P.person(rng)
    doc.t(rng.choice(["Hi all,\n\n", "Hello team,\n\n", "Dear colleagues,\n\n", ""]))
    doc.t(f"the {rng.choice(SOFTWARE)} migration is scheduled for {negative(rng)}; see {negative(rng)} for details.\n\n")
    doc.t(rng.choice(["Best regards,\n", "Kind regards,\n", "Cheers,\n", "--\n", "Mit freundlichen Grüßen\n"]))
    name_in(doc, rng, first, last, form=rng.choice(["full", "full", "middle"]))
    doc.t("\n" + rng.choice(["Senior Account Manager", "Head of Operations", "Software Engineer", "Customer Success Lead", "CFO"]) + " | " + rng.choice(P.COMPANY_WORDS).capitalize() + rng.choice([" Ltd", " GmbH", " Inc.", " B.V."]) + "\n")
    if rng.random() < 0.6:
        doc.e("address", P.address(rng))
        doc.t("\n")
    doc.t(rng.choice(["T: ", "Tel ", "Office: ", "Phone: ", "P "]))
    doc.e("phone", E.phone(rng))
    if rng.random() < 0.15:
        doc.t(E.extension(rng))
    if rng.random() < 0.6:
        doc.t(rng.choice([" | M: ", "\nMobile: ", " · Cell ", "\nM "]))
        doc.e("phone", E.phone(rng))
    doc.t("\n")
    doc.e("email", P.email(rng, first, last))
    doc.t(rng.choice(["\nwww." + rng.choice(P.COMPANY_WORDS) + ".com\n", "\n"]))
    return doc


def chat(rng):
    doc = Doc()
    first, last, _ = P.person(rng)
    agent = rng.choice(["agent", "support", "bot", "Agent (Support)"])
    h, m = rng.randint(8, 20), rng.randint(0, 50)
    lines = rng.randint(3, 6)
    for i in range(lines):
        who = i % 2 == 0
        doc.t(f"[{h:02d}:{m + i:02d}] ")
        if who:
            doc.e("name", (first.lower() if rng.random() < 0.3 else first, {"format": "first"}))
        else:
            doc.t(agent)
        doc.t(": ")
        if who and i == 0:
            doc.t(rng.choice(["hi, my name is ", "hey, this is ", "hello, I'm ", "hi its "]))
            name_in(doc, rng, first, last, form=rng.choice(["full", "full", "lower"]))
            doc.t(f", I have a question about {negative(rng)}\n")
        elif who:
            k = rng.randrange(5)
            if k == 0:
                doc.t(rng.choice(["you can call me on ", "my number is ", "call me at ", "text me ", "pls call "]))
                if rng.random() < 0.3:
                    doc.e("phone", E.local_phone(rng))
                else:
                    doc.e("phone", E.phone(rng))
                doc.t(rng.choice(["", " thx", " after 5", "!!"]) + "\n")
            elif k == 1:
                doc.t("email is ").e("email", P.email(rng, first, last)).t("\n")
            elif k == 2:
                doc.t("card is ").e("card", E.card(rng)).t(f" exp {rng.randint(1, 12):02d}/{rng.randint(26, 31)}\n")
            elif k == 3:
                doc.t("I live at ").e("address", P.address(rng)).t("\n")
            else:
                doc.t(f"ok, it says {negative(rng)} and {negative(rng)}\n")
        else:
            doc.t(rng.choice(["Thanks! Let me check that.", "Could you confirm your email?", f"I see {negative(rng)} on your account.", "One moment please."]) + "\n")
    return doc


def csv_rows(rng):
    doc = Doc()
    cols = rng.choice([
        ["id", "name", "email", "phone", "created_at"],
        ["customer_id", "full_name", "iban", "amount", "currency"],
        ["user", "ip", "timestamp", "status"],
        ["employee", "ssn", "dob", "address"],
        ["order", "name", "card", "total"],
    ])
    sep = rng.choice([",", ";", "\t"])
    doc.t(sep.join(cols) + "\n")
    for _ in range(rng.randint(2, 5)):
        first, last, _c = P.person(rng)
        for i, c in enumerate(cols):
            if i:
                doc.t(sep)
            quote = sep == "," and c in ("address", "name", "full_name", "employee") and rng.random() < 0.7
            if quote:
                doc.t('"')
            if c in ("name", "full_name", "employee"):
                name_in(doc, rng, first, last, form=rng.choice(["full", "last-first", "upper"]) if quote else rng.choice(["full", "upper"]))
            elif c == "email":
                doc.e("email", P.email(rng, first, last))
            elif c == "phone":
                doc.e("phone", E.phone(rng))
            elif c == "iban":
                doc.e("iban", E.iban(rng))
            elif c == "ip":
                doc.e("ip", E.ip(rng))
            elif c == "ssn":
                doc.e("ssn", E.ssn(rng))
            elif c == "dob":
                doc.e("dob", P.date_of_birth(rng))
            elif c == "address":
                value, meta = P.address(rng)
                doc.e("address", (value.replace("\n", ", "), meta))
            elif c == "card":
                doc.e("card", E.card(rng))
            elif c in ("amount", "total"):
                doc.t(f"{rng.randint(1, 9999)}.{rng.randint(0, 99):02d}")
            elif c == "currency":
                doc.t(rng.choice(["EUR", "USD", "GBP", "CHF"]))
            elif c == "user":
                doc.t(rng.choice(["u", "usr_", "id"]) + _d(rng, 6))
            elif c in ("created_at", "timestamp"):
                doc.t(negative(rng) if rng.random() < 0.2 else f"{rng.randint(2019, 2026)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}")
            elif c == "status":
                doc.t(rng.choice(["ok", "failed", "locked", "200", "403"]))
            else:
                doc.t(_d(rng, rng.randint(4, 9)))
            if quote:
                doc.t('"')
        doc.t("\n")
    return doc


def _json_str(doc, kind, vm):
    """A JSON string value holding an entity (JSON escapes would move offsets, so values with
    characters JSON escapes are written with those characters replaced)."""
    value, meta = vm
    value = value.replace("\n", " ").replace('"', "'")
    doc.t('"').e(kind, (value, meta)).t('"')


def json_payload(rng):
    doc = Doc()
    first, last, _ = P.person(rng)
    ind = rng.choice([None, 2])
    nl = "\n" if ind else ""
    pad = lambda lvl: " " * (ind * lvl) if ind else ""
    sp = " " if ind else rng.choice(["", " "])
    fields = [("order_id", lambda: doc.t(json.dumps(negative(rng)))), ("full_name", lambda: _json_str(doc, "name", P.name(rng, first, last, "full"))), ("email", lambda: _json_str(doc, "email", P.email(rng, first, last)))]
    extra = [
        ("phone", lambda: _json_str(doc, "phone", E.phone(rng))),
        ("billing_address", lambda: _json_str(doc, "address", P.address(rng))),
        ("date_of_birth", lambda: _json_str(doc, "dob", P.date_of_birth(rng))),
        ("iban", lambda: _json_str(doc, "iban", E.iban(rng))),
        ("card_number", lambda: _json_str(doc, "card", E.card(rng))),
        ("client_ip", lambda: _json_str(doc, "ip", E.ip(rng))),
        ("api_key", lambda: _json_str(doc, "secret", E.secret(rng))),
        ("amount", lambda: doc.t(str(rng.randint(1, 99999) / 100))),
        ("created", lambda: doc.t(json.dumps(negative(rng)))),
        ("trace_id", lambda: doc.t(json.dumps(str(uuid.UUID(int=rng.getrandbits(128), version=4))))),
        ("location", lambda: doc.t(json.dumps(negative(rng)))),
    ]
    fields += rng.sample(extra, rng.randint(2, 5))
    rng.shuffle(fields)
    doc.t("{" + nl)
    for i, (k, write) in enumerate(fields):
        doc.t(f'{pad(1)}"{k}":{sp}')
        write()
        doc.t(("," if i < len(fields) - 1 else "") + (nl if ind else (" " if sp and i < len(fields) - 1 else "")))
    doc.t("}")
    return doc


def thread(rng):
    doc = Doc()
    a_first, a_last, _ = P.person(rng)
    b_first, b_last, _ = P.person(rng)
    doc.t("Hi ").e("name", (b_first, {"format": "first"})).t(",\n\n")
    doc.t(f"thanks, that works. I've attached {negative(rng)}. The new number for the office is ")
    doc.e("phone", E.phone(rng))
    doc.t(".\n\nBest,\n")
    doc.e("name", (a_first, {"format": "first"}))
    doc.t(f"\n\nOn {rng.choice(['Mon', 'Tue', 'Wed', 'Thu', 'Fri'])}, {negative(rng) if rng.random() < 0.3 else '3 Mar 2025'} at {rng.randint(8, 18)}:{rng.randint(10, 59)}, ")
    name_in(doc, rng, b_first, b_last, form="full")
    doc.t(" <").e("email", P.email(rng, b_first, b_last)).t("> wrote:\n")
    q = "> "
    doc.t(f"{q}Hello ").e("name", (a_first, {"format": "first"})).t(",\n")
    doc.t(f"{q}can you send me the details for {negative(rng)}? My direct line is ")
    phone_with_extras(doc, rng, cue=False)
    doc.t(f"\n{q}and my home address is\n{q}")
    value, meta = P.address(rng)
    doc.e("address", (value.replace("\n", "\n" + q), meta))
    doc.t(f"\n{q}\n{q}Regards,\n{q}")
    name_in(doc, rng, b_first, b_last, form="full")
    doc.t("\n")
    return doc


def log_lines(rng):
    doc = Doc()
    for _ in range(rng.randint(3, 7)):
        ts = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
        level = rng.choice(["INFO", "WARN", "ERROR", "DEBUG"])
        doc.t(f"{ts} {level} ")
        k = rng.randrange(6)
        if k == 0:
            doc.t("login ok user=").e("email", P.email(rng)).t(" ip=").e("ip", E.ip(rng)).t(f" req={uuid.UUID(int=rng.getrandbits(128), version=4)}\n")
        elif k == 1:
            doc.t(f"payment declined amount={negative(rng)} card=").e("card", E.card(rng)).t(f" attempt={rng.randint(1, 5)}\n")
        elif k == 2:
            doc.t(f"GET /api/v2/orders/{_d(rng, 8)} 200 {rng.randint(1, 900)}ms client=").e("ip", E.ip(rng)).t(f" ua=\"Mozilla/5.0 ({rng.choice(['Windows NT 10.0; Win64; x64', 'X11; Linux x86_64', 'Macintosh; Intel Mac OS X 14_5'])})\"\n")
        elif k == 3:
            doc.t(f"sms sent to=").e("phone", E.phone(rng)).t(f" template={rng.choice(['otp', 'reminder'])} id={negative(rng)}\n")
        elif k == 4:
            doc.t(f"deploy {negative(rng)} commit={''.join(rng.choice(HEX) for _ in range(40))} took {rng.randint(1, 600)}s\n")
        else:
            doc.t(f"cache miss key=session:{''.join(rng.choice(HEX) for _ in range(32))} size={rng.randint(1, 99999)}\n")
    return doc


def config_snippet(rng):
    doc = Doc()
    k = rng.randrange(4)
    if k == 0:
        doc.t("Here is my .env, why does it fail?\n\n")
        doc.t(f"DATABASE_HOST=").e("ip", E.ipv4(rng)).t(f"\nDATABASE_PORT={rng.choice([5432, 3306])}\n")
        doc.t(rng.choice(["OPENAI_API_KEY=", "API_KEY=", "STRIPE_SECRET=", "TOKEN="])).e("secret", E.secret(rng)).t("\n")
        doc.t(f"APP_VERSION={negative(rng)}\n")
    elif k == 1:
        doc.t("```python\nclient = Client(\n    api_key=\"").e("secret", E.secret(rng)).t(f"\",\n    timeout={rng.randint(5, 60)},\n    base_url=\"https://api.example.com/v{rng.randint(1, 3)}\",\n)\n```\n")
    elif k == 2:
        doc.t("[default]\naws_access_key_id = ").e("secret", (rng.choice(["AKIA", "ASIA"]) + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)), {"region": "aws-akid", "format": "aws-akid"}))
        doc.t("\naws_secret_access_key = ").e("secret", ("".join(rng.choice(string.ascii_letters + string.digits + "/+") for _ in range(40)), {"region": "aws-secret", "format": "aws-secret"}))
        doc.t(f"\nregion = {rng.choice(['us-east-1', 'eu-west-1', 'ap-south-1'])}\n")
    else:
        doc.t("curl -H 'Authorization: Bearer ").e("secret", E.secret(rng)).t(f"' https://api.example.com/v1/items?limit={rng.randint(1, 100)}\n")
        doc.t("ssh deploy@").e("ip", E.ip(rng)).t(f" -p {rng.choice([22, 2222])}\n")
    return doc


def case_note(rng):
    doc = Doc()
    first, last, country = P.person(rng)
    doc.t(rng.choice(["Patient: ", "Applicant: ", "Employee: ", "Client: "]))
    name_in(doc, rng, first, last, title=rng.random() < 0.3)
    doc.t(rng.choice([", DOB ", ", born ", ". Date of birth: ", " (d.o.b. ", ", born on "]))
    doc.e("dob", P.date_of_birth(rng))
    doc.t(")" if doc.parts[-2].endswith("(d.o.b. ") else "")
    doc.t(". ")
    if rng.random() < 0.5:
        doc.t(rng.choice(["SSN ", "Social Security number: ", "SSN: ", "social security no. "])).e("ssn", E.ssn(rng)).t(". ")
    doc.t(rng.choice(["Lives at ", "Home address: ", "Resides at "])).e("address", P.address(rng)).t(". ")
    doc.t(f"Seen on {negative(rng)} regarding {negative(rng)}; follow-up with Dr. ")
    f2, l2, _ = P.person(rng)
    doc.e("name", (l2, {"format": "last"}))
    doc.t(f" in {rng.randint(2, 8)} weeks. Emergency contact: ")
    f3, l3, _ = P.person(rng)
    name_in(doc, rng, f3, l3, form="full")
    doc.t(", ")
    phone_with_extras(doc, rng, cue=rng.random() < 0.5)
    doc.t(".\n")
    return doc


def payment(rng):
    doc = Doc()
    first, last, _ = P.person(rng)
    doc.t(f"Please transfer {negative(rng)} for invoice {negative(rng)} to\n")
    doc.t(rng.choice(["Account holder: ", "Beneficiary: ", "Name: "]))
    name_in(doc, rng, first, last)
    doc.t("\n" + rng.choice(["IBAN: ", "IBAN ", "Account (IBAN): ", "iban: "])).e("iban", E.iban(rng))
    doc.t(f"\nBIC: {''.join(rng.choice(string.ascii_uppercase) for _ in range(6))}{rng.choice(['2X', '22', 'FF'])}XXX\n")
    doc.t(f"Reference: {negative(rng)}\n")
    if rng.random() < 0.4:
        doc.t("Alternatively pay by card: ").e("card", E.card(rng)).t("\n")
    return doc


def negatives_only(rng):
    """A message with no PII: hard negatives in prose."""
    doc = Doc()
    for _ in range(rng.randint(3, 7)):
        doc.t(rng.choice([
            f"The {rng.choice(PRODUCTS)} costs {negative(rng)} since {negative(rng)}. ",
            f"{rng.choice(CAPWORDS)}: {negative(rng)} is still pending in {rng.choice(SOFTWARE)}. ",
            f"Tracking {negative(rng)} was updated at {negative(rng)}. ",
            f"We upgraded to {negative(rng)} and the checksum is {negative(rng)}. ",
            f"Ship to the warehouse near {negative(rng)} ({negative(rng)}). ",
            f"{rng.choice(CAPWORDS)} {rng.choice(CAPWORDS)} — see {negative(rng)}. ",
        ]))
    doc.t("\n")
    return doc


CARRIERS = {
    "ticket": (ticket, 3),
    "web_form": (web_form, 2),
    "signature": (signature, 2),
    "chat": (chat, 2),
    "csv": (csv_rows, 1),
    "json": (json_payload, 2),
    "thread": (thread, 2),
    "log": (log_lines, 1),
    "config": (config_snippet, 1),
    "case_note": (case_note, 1),
    "payment": (payment, 1),
    "negatives": (negatives_only, 2),
}


def message(rng):
    names = sorted(CARRIERS)
    weights = [CARRIERS[n][1] for n in names]
    name = rng.choices(names, weights)[0]
    return name, CARRIERS[name][0](rng)
