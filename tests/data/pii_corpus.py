"""Builds `pii_corpus.jsonl` and `pii_questions.jsonl`, the corpora that measure
`schemas.privacy.scrub` on feedback-shaped and on question-shaped text.

    uv run python tests/data/pii_corpus.py     # rewrites both files

Each line is `{"text": ..., "pii": [[kind, substring], ...]}`; clean lines have `"pii": []`.
Positive values are generated so that they are *real* in format (Luhn-valid cards,
mod-97-valid IBANs, SSNs outside the never-issued ranges, phone numbers valid in Google's
metadata, routable and special IP addresses) and are placed in varied sentences: start,
middle, end, next to punctuation, brackets, quotes, other languages. Clean lines are the
hard cases for a scrubber: years, ratings, dates, times, money, titles with numbers, plus
real MetaQA questions and knowledge-base entity names that contain digits.
Question-shaped lines (`pii_questions.jsonl`) put the same personal data into real MetaQA
`qa_val` questions, bracketed and raw ("who directed Heat, my email is ..."), the way a user
who asks and adds where to reach them would; the clean ones are the questions alone.
The seeds are fixed, so the files are reproducible.
"""

from __future__ import annotations

import gzip
import random
import string
from pathlib import Path

import orjson
import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

HERE = Path(__file__).resolve().parent
OUT = HERE / "pii_corpus.jsonl"
QUESTIONS_OUT = HERE / "pii_questions.jsonl"
METAQA = HERE.parent.parent / "reasoning" / "data" / "metaqa"
rng = random.Random(2026)

CONTEXTS = [
    "{x}",
    "my {label} is {x}",
    "You can reach me at {x}.",
    "contact: {x}",
    "Contact:{x}",
    "({x})",
    "please use {x}, thanks",
    "The answer is wrong, {x} is mine",
    '"{x}"',
    "<{x}>",
    "Wrong director. Ping me on {x} if you need details",
    "{x} - that's where to find me",
    "Meine {label}: {x}.",
    "Mon {label} : {x} !",
    "great answer!! ({label} {x})",
    "line one\n{x}\nline three",
    "it listed Heat (1995) but my {label} {x} was in the reply?",
    "rated it 7.5/10; {x}",
    "Sent from {x} on 12/05/2023 at 10:30",
    "{label}={x};",
]


def place(kind: str, value: str, label: str) -> dict:
    text = rng.choice(CONTEXTS).format(x=value, label=label)
    return {"text": text, "pii": [[kind, value]]}


# --- emails ---------------------------------------------------------------------------
FIRST = ["john", "maria", "li", "o'brien", "anne-marie", "jörg", "kim", "ahmed", "sofia", "dev", "x", "J.R.R"]
LAST = ["smith", "garcia", "wang", "mueller", "nguyen", "o_neil", "kowalski", "rossi", "tanaka", "dupont"]
DOMAINS = [
    "example.com", "mail.example.org", "gmail.com", "yahoo.co.uk", "uni-heidelberg.de", "company.io",
    "sub.dept.agency.gov", "fastmail.fm", "proton.me", "exämple.de", "web.de", "outlook.fr", "my-site.travel",
]


def emails(n: int) -> list[dict]:
    out = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        local = rng.choice([f"{first}.{last}", f"{first}{rng.randrange(100)}", f"{first}+movies", f"{last}_{first}",
                            f"{first[0]}{last}", f"{first}-{last}.{rng.randrange(1970, 2005)}"])
        value = f"{local}@{rng.choice(DOMAINS)}"
        if i % 9 == 0:
            value = value.upper()
        if i % 13 == 0:
            user, domain = value.split("@")
            value = f"{user} [at] {domain.replace('.', ' [dot] ')}"
        out.append(place("email", value, "email"))
    return out


# --- phones ---------------------------------------------------------------------------
PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "AU", "CN", "JP", "BR", "ES", "IT", "NL", "MX", "CA", "CH", "SE", "PL"]
FORMATS = [
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.E164,
]


def random_phone(region: str, mobile: bool) -> phonenumbers.PhoneNumber:
    """A random number that the metadata calls valid, shaped like the region's example."""
    kind = phonenumbers.PhoneNumberType.MOBILE if mobile else phonenumbers.PhoneNumberType.FIXED_LINE
    example = phonenumbers.example_number_for_type(region, kind) or phonenumbers.example_number(region)
    national = str(example.national_number)
    for keep in range(max(2, len(national) // 3), len(national) + 1):
        for _ in range(50):
            digits = national[:keep] + "".join(rng.choice(string.digits) for _ in range(len(national) - keep))
            number = phonenumbers.PhoneNumber(
                country_code=example.country_code, national_number=int(digits),
                italian_leading_zero=example.italian_leading_zero,
            )
            if phonenumbers.is_valid_number(number):
                return number
    return example


def us_styles(number: phonenumbers.PhoneNumber) -> list[str]:
    d = str(number.national_number)
    a, b, c = d[:3], d[3:6], d[6:]
    return [f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"{a}.{b}.{c}", f"{a} {b} {c}", f"+1 ({a}) {b}-{c}", f"1-{a}-{b}-{c}", d]


def phones(n: int) -> list[dict]:
    out = []
    for i in range(n):
        region = PHONE_REGIONS[i % len(PHONE_REGIONS)]
        number = random_phone(region, mobile=i % 2 == 0)
        if region in ("US", "CA") and i % 3 == 0:
            value = rng.choice(us_styles(number))
        elif i % 11 == 0:
            value = "00" + phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)[1:]
        else:
            value = phonenumbers.format_number(number, FORMATS[i % len(FORMATS)])
        out.append(place("phone", value, rng.choice(["phone", "number", "mobile", "tel", "Handy", "numéro"])))
    return out


# --- cards ----------------------------------------------------------------------------
BRANDS = [("4", 16, (4, 4, 4, 4)), ("4", 13, (4, 4, 5)), ("51", 16, (4, 4, 4, 4)), ("55", 16, (4, 4, 4, 4)),
          ("2221", 16, (4, 4, 4, 4)), ("34", 15, (4, 6, 5)), ("37", 15, (4, 6, 5)), ("6011", 16, (4, 4, 4, 4)),
          ("36", 14, (4, 6, 4)), ("35", 16, (4, 4, 4, 4)), ("6304", 19, (4, 4, 4, 4, 3)), ("62", 18, (6, 12))]


def card_number(prefix: str, length: int) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, pos = [], 0
    for size in sizes:
        parts.append(digits[pos : pos + size])
        pos += size
    return sep.join(parts)


def cards(n: int) -> list[dict]:
    out = []
    for i in range(n):
        prefix, length, sizes = BRANDS[i % len(BRANDS)]
        digits = card_number(prefix, length)
        value = [digits, group(digits, sizes, " "), group(digits, sizes, "-")][i % 3]
        out.append(place("card", value, rng.choice(["card", "Visa", "credit card", "Karte", "carte"])))
    return out


# --- IP addresses -------------------------------------------------------------------------
def ipv4s(n: int) -> list[dict]:
    out = []
    for i in range(n):
        octets = [rng.randrange(1, 224), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)]
        if i % 5 == 0:
            octets[:2] = [192, 168]
        elif i % 7 == 0:
            octets[0] = 10
        value = ".".join(map(str, octets))
        ctx = rng.choice(["{x}", "http://{x}:8080/status", "from {x}", "{x}:443", "logged in from {x} yesterday"])
        out.append({"text": f"my IP: {ctx.format(x=value)}" if i % 2 else ctx.format(x=value), "pii": [["ip", value]]})
    return out


def ipv6s(n: int) -> list[dict]:
    fixed = ["::1", "fe80::1%eth0", "::ffff:192.0.2.128", "2001:db8::1", "FE80::0202:B3FF:FE1E:8329"]
    out = []
    for i in range(n):
        groups = [f"{rng.randrange(0x10000):x}" for _ in range(8)]
        groups[0] = rng.choice(["2001", "2a02", "2600", "fd00", "fe80"])
        if i < len(fixed):
            value = fixed[i]
        elif i % 3 == 0:
            value = ":".join(g.zfill(4) for g in groups)
        elif i % 3 == 1:
            value = ":".join(groups[:3]) + "::" + ":".join(groups[6:])
        else:
            value = ":".join(groups).upper()
        ctx = rng.choice(["{x}", "connect to [{x}]:8443", "v6 address {x}.", "from {x}, not mine"])
        out.append({"text": ctx.format(x=value), "pii": [["ip", value]]})
    return out


# --- IBANs ----------------------------------------------------------------------------------
IBAN_SHAPES = {  # country: BBAN as (letters, digits) runs
    "DE": "n18", "GB": "a4n14", "FR": "n10c11n2", "NL": "a4n10", "ES": "n20", "IT": "a1n10c12", "CH": "n17",
    "AT": "n16", "BE": "n12", "PL": "n24", "SE": "n20", "IE": "a4n14", "DK": "n14", "FI": "n14", "NO": "n11",
    "PT": "n21", "LU": "n3c13", "CZ": "n20",
}


def bban(shape: str) -> str:
    out, i = [], 0
    while i < len(shape):
        kind = shape[i]
        j = i + 1
        while j < len(shape) and shape[j].isdigit():
            j += 1
        alphabet = {"n": string.digits, "a": string.ascii_uppercase, "c": string.digits + string.ascii_uppercase}[kind]
        out.append("".join(rng.choice(alphabet) for _ in range(int(shape[i + 1 : j]))))
        i = j
    return "".join(out)


def ibans(n: int) -> list[dict]:
    out, countries = [], sorted(IBAN_SHAPES)
    while len(out) < n:
        cc = countries[len(out) % len(countries)]
        body = bban(IBAN_SHAPES[cc])
        compact = cc + stdnum_iban.calc_check_digits(cc + "00" + body) + body
        if not stdnum_iban.is_valid(compact):
            continue  # a national check digit (BE, ES, FR, …) failed: draw again
        value = compact if len(out) % 2 else " ".join(compact[k : k + 4] for k in range(0, len(compact), 4))
        out.append(place("iban", value, rng.choice(["IBAN", "account", "Konto", "compte"])))
    return out


# --- US social security numbers ------------------------------------------------------------
def ssns(n: int) -> list[dict]:
    out = []
    for i in range(n):
        area = rng.choice([a for a in range(1, 900) if a != 666])
        value = f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}"
        if i % 4 == 1:
            value = value.replace("-", " ")
        if i % 4 == 2:
            text, value = f"SSN: {value.replace('-', '')}", value.replace("-", "")
            out.append({"text": text, "pii": [["ssn", value]]})
            continue
        out.append(place("ssn", value, rng.choice(["SSN", "social security number"])))
    return out


def mixed(n: int) -> list[dict]:
    """Sentences carrying several kinds at once."""
    out = []
    for _ in range(n):
        parts = [emails(1)[0]["pii"][0], phones(1)[0]["pii"][0], cards(1)[0]["pii"][0], ipv4s(1)[0]["pii"][0]]
        rng.shuffle(parts)
        chosen = parts[: rng.randrange(2, 5)]
        text = "; ".join(f"{k} {v}" for k, v in chosen) + " - please delete this"
        out.append({"text": text, "pii": chosen})
    return out


# --- clean text ----------------------------------------------------------------------------
CLEAN = """\
what films were released in 1999
who directed 2001: A Space Odyssey
I rated it 7.5 out of 10
Blade Runner 2049 came out in 2017, not 2049
The answer should be 12 Angry Men (1957)
Apollo 13 was released on June 30, 1995
It was released 1995-06-30 in the US
Released 30/06/1995 in the UK and 30.06.1995 in Germany
The screening is at 10:30 or 22:15
runtime 2h 22m (142 min), aspect ratio 2.39:1
Box office: $2,923,706,026 worldwide
It cost $237 million, about €210m
Over 1,000,000 votes on the site
Se7en is better than 1917
Fahrenheit 9/11 won the Palme d'Or in 2004
The Taking of Pelham 1 2 3 is from 1974 and 2009
3:10 to Yuma (2007) has Russell Crowe
10,000 BC and 300 are not historical
20,000 Leagues Under the Sea is from 1954
(500) Days of Summer, 50 First Dates and 8 Mile
score 4.5 stars, 93% on the tomatometer
Ocean's 11, Ocean's 12 and Ocean's 13
The 39 Steps by Hitchcock
Star Wars: Episode IV - A New Hope (1977)
District 9 and Elysium, 2009 and 2013
1408 is a Stephen King story
21 Jump Street, 22 Jump Street
Catch-22 was published in 1961
Rocky IV, Rocky V, Rocky Balboa (2006)
I watched it on 2023/05/12 at 9:45 pm
the movies from 1990 to 2005 and 2008 to 2012
in 2001, 2002 and 2003 he made three films
years 1994 1995 1996 1997 1998
Friday the 13th Part VIII
9 1/2 Weeks is from 1986
2 Fast 2 Furious is the second one
the 1930s, 1940s and 1950s were the golden age
Top 250 rank #12, IMDb id tt0111161
ISBN 978-0-306-40615-7 is the novel it adapts
version 3.11.7 of the app, build 20231105
v2.0.1 fixed it
1920x1080 or 3840x2160 resolution
16:9 and 4:3 formats
score was 3-2 in the final
Chapter 4, section 2.3, page 117
the film cost 200000000 dollars
population of 1,402,112,000
Room 237 is a documentary
127 Hours with James Franco
Thirteen Days (2000) about October 1962
it runs 1:42:30
Jackass 3.5 and Saw 3D
The Hateful Eight is his 8th film
Mission: Impossible 2 (2000), III (2006)
Its sequel is 28 Weeks Later (2007) after 28 Days Later (2002)
1 2 3 4 5 go
the cast had 42 actors and 1,200 extras
shot in 35 mm and 70 mm
temperatures of -40 degrees
Dolby 5.1 and 7.1 surround
ranked 1st, 2nd and 3rd
the DVD has 2 discs, 480 minutes
released on 05-12-2023
the 2023-24 season
his 100th film
4K UHD, 60 fps, 120 Hz
co-written by 2 people in 3 weeks
Beverly Hills Cop II came out 1987
The answer "1998" is wrong, it's 1997
sequel 2 of 3
no. 5 on the list
pi is 3.14159265358979
over 9000
At 12:00:00 UTC
rating: 8.6/10 from 2,345,678 users
budget 15.000.000 DM
the 24 hours of Le Mans
it's in 3D
movies like Primer (2004) and Coherence (2013)
"""
CLEAN_TEMPLATES = [
    "what movies did {y} see released",
    "which films came out in {y}",
    "I think {t} is from {y}, not {y2}",
    "rated {r}/10",
    "the answer {t} ({y}) is right",
    "it got {r} out of 10 and {p}% on reviews",
    "watched on {d}.{m}.{y} at {h}:{mi}",
    "released {y}-{m}-{d}",
    "released {m}/{d}/{y}",
    "box office ${money}",
    "between {y} and {y2} he directed {n} films",
]
TITLES = ["Heat", "Alien", "Seven Samurai", "Memento", "Amélie", "Parasite", "Jaws", "Vertigo", "Up"]


def templated_clean(n: int) -> list[str]:
    out = []
    for i in range(n):
        y, y2 = rng.randrange(1920, 2026), rng.randrange(1920, 2026)
        money = f"{rng.randrange(1, 999)},{rng.randrange(1000):03d},{rng.randrange(1000):03d}"
        out.append(CLEAN_TEMPLATES[i % len(CLEAN_TEMPLATES)].format(
            y=y, y2=y2, t=rng.choice(TITLES), r=f"{rng.randrange(1, 10)}.{rng.randrange(10)}", p=rng.randrange(101),
            d=f"{rng.randrange(1, 29):02d}", m=f"{rng.randrange(1, 13):02d}", h=rng.randrange(24),
            mi=f"{rng.randrange(60):02d}", money=money, n=rng.randrange(2, 30),
        ))
    return out


def metaqa_clean(n_questions: int, n_entities: int) -> list[str]:
    """Real MetaQA questions and KB entity names that contain digits (the hardest clean text)."""
    questions = []
    for hop in (1, 2, 3):
        for line in (METAQA / f"{hop}-hop" / "qa_val.txt").read_text().splitlines():
            q = line.split("\t")[0]
            if any(c.isdigit() for c in q):
                questions.append(q.replace("[", "").replace("]", ""))
    entities = set()
    with gzip.open(METAQA / "kb.txt.gz", "rt") as kb:
        for line in kb:
            for name in line.rstrip("\n").split("|")[::2]:
                if sum(c.isdigit() for c in name) >= 2:
                    entities.add(name)
    return rng.sample(sorted(set(questions)), n_questions) + rng.sample(sorted(entities), n_entities)


def build() -> list[dict]:
    positives = emails(60) + phones(102) + cards(48) + ipv4s(36) + ipv6s(30) + ibans(36) + ssns(28) + mixed(20)
    clean = [s for s in CLEAN.splitlines() if s] + templated_clean(110) + metaqa_clean(60, 60)
    return positives + [{"text": text, "pii": []} for text in clean]


# --- question-shaped text ----------------------------------------------------------------
QUESTION_CONTEXTS = [  # {q}: a MetaQA question, {x}: the personal data, {label}: what it is
    "{q}, my {label} is {x}",
    "{q}? my {label}: {x}",
    "{q} - reply to {x}",
    "{q} ({label} {x})",
    "{q}\n{label}: {x}",
    "hi, {q}. {label} {x} if you need me",
    "{x} here: {q}",
    "{q}, I'm {x}",
    "{label}={x} {q}",
    "{q} [{x}]",
]
LABELS = {"email": "email", "phone": "phone", "card": "card", "ip": "IP", "iban": "IBAN", "ssn": "SSN"}
QUESTION_JOINS = ["{q}, {t}", "{q}? {t}", "{t} - {q}", "{q}\n{t}", "{t}. {q}"]


def qa_val_questions() -> list[str]:
    """Every `qa_val` question (1-, 2- and 3-hop), with MetaQA's brackets around the entity."""
    return [
        line.split("\t")[0]
        for hop in (1, 2, 3)
        for line in (METAQA / f"{hop}-hop" / "qa_val.txt").read_text().splitlines()
    ]


def question_shaped(records: list[dict]) -> list[dict]:
    """Each feedback positive's personal data in a real question; clean lines are questions alone.

    A single value goes into a question context; several values, and nine bare digits (an
    SSN only where the text says so), travel with the feedback sentence that labels them."""
    qrng = random.Random(2027)
    questions = qa_val_questions()
    out = []
    for record in (r for r in records if r["pii"]):
        q = qrng.choice(questions)
        q = q if qrng.random() < 0.5 else q.replace("[", "").replace("]", "")  # users type no brackets
        (kind, value), *more = record["pii"]
        if more or (kind == "ssn" and value.isdigit()):
            text = qrng.choice(QUESTION_JOINS).format(q=q, t=record["text"])
        else:
            text = qrng.choice(QUESTION_CONTEXTS).format(q=q, x=value, label=LABELS[kind])
        out.append({"text": text, "pii": record["pii"]})
    clean = qrng.sample(questions, 400)
    out += [{"text": q if i % 2 else q.replace("[", "").replace("]", ""), "pii": []} for i, q in enumerate(clean)]
    return out


def write(path: Path, records: list[dict]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    n_pos = sum(1 for r in records if r["pii"])
    print(f"wrote {path.name}: {n_pos} with personal data, {len(records) - n_pos} clean")


def main() -> None:
    records = build()
    write(OUT, records)
    write(QUESTIONS_OUT, question_shaped(records))


if __name__ == "__main__":
    main()
