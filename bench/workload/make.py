"""Builds bench/workload/requests.jsonl, the requests bench/cost.py sends, and the README beside it that states what
is in it (the mix, the repeat rate, the seed). Deterministic: the same options write the same bytes.

    python bench/workload/make.py                          # 2,000 requests, 15 % exact repeats, seed 23
    python bench/workload/make.py --requests 5000 --repeat 0.3 --out /tmp/w.jsonl

The prompts are written to look like an agent's traffic: support replies, ticket labels, extraction to JSON,
summaries of a pasted text, SQL and code, plans, math word problems and proofs, each from templates and varied
fillers (names, products, orders, amounts, dates, pasted paragraphs). Each request is labelled with its difficulty
class (simple, medium, complex, breakthrough: the seeds' 60/25/10/5 mix, exact) and a numeric difficulty in [0, 1]
drawn within its class's band, which bench/cost.py sends as `x_bench_difficulty` for the simulator's quality model
(app/simulator/quality.py), and with the length of a good answer in tokens (`completion_tokens`).

A repeat is an exact duplicate of an earlier request of its class (same messages, same parameters, same
difficulty): what a response cache can serve. Each class gets the same share of repeats (--repeat), so the mix
holds with them and without them.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLASSES: dict[str, tuple[float, tuple[float, float]]] = {  # share of requests, difficulty band
    "simple": (0.60, (0.05, 0.35)),
    "medium": (0.25, (0.35, 0.60)),
    "complex": (0.10, (0.60, 0.80)),
    "breakthrough": (0.05, (0.80, 0.90)),
}
# Which task a request of each class is for: an agent sends each task easy and hard requests alike.
TASK_MIX: dict[str, dict[str, float]] = {
    "simple": {"support": 0.35, "extract": 0.25, "summarize": 0.15, "code": 0.10, "plan": 0.05, "math": 0.10},
    "medium": {"support": 0.15, "extract": 0.15, "summarize": 0.20, "code": 0.25, "plan": 0.10, "math": 0.15},
    "complex": {"support": 0.05, "extract": 0.10, "summarize": 0.10, "code": 0.30, "plan": 0.25, "math": 0.20},
    "breakthrough": {"code": 0.35, "plan": 0.25, "math": 0.40},
}

FIRST = [
    "Maria",
    "James",
    "Aiko",
    "Oluwaseun",
    "Lena",
    "Carlos",
    "Priya",
    "Tom",
    "Fatima",
    "Noah",
    "Ines",
    "Wei",
    "Sven",
    "Amara",
    "Diego",
    "Hannah",
    "Ravi",
    "Chloe",
    "Mateo",
    "Yuki",
    "Omar",
    "Sofia",
    "Lukas",
    "Zara",
]
LAST = [
    "Garcia",
    "Smith",
    "Tanaka",
    "Adeyemi",
    "Fischer",
    "Rossi",
    "Patel",
    "Nguyen",
    "Kowalski",
    "Haddad",
    "Johansson",
    "Okafor",
    "Dubois",
    "Silva",
    "Chen",
    "Murphy",
    "Novak",
    "Larsen",
    "Moreau",
    "Kim",
]
COMPANIES = [
    "Acme Cloud Storage",
    "PayFlow",
    "TrailRunner",
    "NimbusDB",
    "Brightline Mobile",
    "Kettle & Co",
    "Orbit Fitness",
    "Lumen Energy",
    "ParcelPoint",
    "StudyNest",
    "Harbor Bank",
    "GreenCart Grocery",
]
PRODUCTS = [
    "the X2 running shoes",
    "a 2 TB storage plan",
    "the annual Pro subscription",
    "a standing desk",
    "the noise-cancelling headphones",
    "a family mobile plan",
    "the espresso machine",
    "a yoga mat bundle",
    "the smart thermostat",
    "a box of 12 coffee pods",
    "the kids' tablet",
    "a pair of hiking boots",
]
ISSUES = [
    "I was charged twice",
    "the package arrived damaged",
    "I can't reset my password",
    "the app crashes when I log in",
    "I received the wrong size",
    "my refund hasn't arrived",
    "my subscription renewed without any notice",
    "the two-factor codes never arrive",
    "the delivery is a week late",
    "the invoice shows the wrong VAT number",
    "my account was locked",
    "the discount code was not applied",
]
LABELS = ["billing", "shipping", "account", "technical", "other"]
CITIES = ["Lisbon", "Osaka", "Lagos", "Hamburg", "Austin", "Toronto", "Pune", "Melbourne", "Lyon", "Bogota"]
TEAMS = ["payments", "search", "mobile", "data platform", "checkout", "growth", "infra", "support tooling"]
SYSTEMS = [
    "Postgres 13",
    "a monolith on EC2",
    "cron jobs",
    "a Redis cache",
    "Jenkins",
    "a MySQL replica",
    "an on-prem Kafka cluster",
    "a PHP 7 app",
]
TARGETS = [
    "Postgres 16",
    "Kubernetes",
    "a managed scheduler",
    "DynamoDB",
    "GitHub Actions",
    "Aurora",
    "a managed Kafka service",
    "a Python service",
]
ITEMS = [
    ("notebooks", 3.5),
    ("pens", 1.2),
    ("tickets", 18.0),
    ("coffees", 4.25),
    ("bus passes", 2.8),
    ("plants", 12.0),
    ("cables", 7.5),
    ("shirts", 22.0),
]
TABLES = [
    ("orders", ["id", "customer_id", "total", "status", "created_at"]),
    ("customers", ["id", "name", "email", "country", "signup_date"]),
    ("payments", ["id", "order_id", "amount", "method", "paid_at"]),
    ("tickets", ["id", "customer_id", "priority", "opened_at", "closed_at"]),
    ("shipments", ["id", "order_id", "carrier", "shipped_at", "delivered_at"]),
]
LANGS = ["Python", "TypeScript", "Go", "Rust", "Java"]

Gen = Callable[[random.Random], tuple[str, list[dict[str, str]], int, dict[str, Any]]]


def name(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


def order_id(r: random.Random) -> str:
    return f"ORD-{r.randint(100000, 999999)}"


def date(r: random.Random) -> str:
    return f"2026-{r.randint(1, 11):02d}-{r.randint(1, 28):02d}"


def money(r: random.Random, low: float = 5, high: float = 400) -> str:
    return f"{r.uniform(low, high):.2f}"


def between(r: random.Random, low: int, high: int) -> int:
    return r.randint(low, high)


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def system(text: str) -> dict[str, str]:
    return {"role": "system", "content": text}


def support_system(r: random.Random, rules: int) -> dict[str, str]:
    policy = [
        "Refunds are possible within 30 days of delivery.",
        "Damaged items are replaced free of charge.",
        "Duplicate charges are refunded within 5 business days.",
        "Never promise a delivery date.",
        "Accounts locked for fraud review are handled by the risk team only.",
        "Subscriptions renewed in the last 14 days can be cancelled with a full refund.",
        "Shipping fees are refunded only when the delay is our fault.",
        "Store credit may be offered up to 20 % of the order value.",
    ]
    chosen = " ".join(policy[:rules]) if rules else ""
    intro = f"You are a customer support agent for {r.choice(COMPANIES)}. Be concise and friendly."
    return system(f"{intro} {chosen}".strip())


def paragraph(r: random.Random, sentences: int) -> str:
    bank = [
        lambda: (
            f"The {r.choice(TEAMS)} team reported that latency rose by {between(r, 5, 60)} % after the release "
            f"on {date(r)}."
        ),
        lambda: f"{name(r)} will own the follow-up and report back by {date(r)}.",
        lambda: f"Customers in {r.choice(CITIES)} saw {between(r, 2, 40)} failed payments per hour at the peak.",
        lambda: f"The root cause was a missing index on the {r.choice(TABLES)[0]} table, added in a hotfix.",
        lambda: (
            f"Revenue for the quarter came in at ${between(r, 2, 90)}.{between(r, 0, 9)}M, "
            f"{between(r, 1, 15)} % above plan."
        ),
        lambda: (
            f"We agreed to freeze deploys of {r.choice(SYSTEMS)} until the migration to {r.choice(TARGETS)} is done."
        ),
        lambda: (
            f"Support volume grew {between(r, 5, 80)} % week over week, mostly tickets saying '{r.choice(ISSUES)}'."
        ),
        lambda: f"{name(r)} raised the risk that the vendor contract ends on {date(r)} with no renewal signed.",
        lambda: (
            f"The pilot in {r.choice(CITIES)} reached {between(r, 100, 5000)} weekly users and a retention "
            f"of {between(r, 20, 70)} %."
        ),
        lambda: (
            f"A customer survey of {between(r, 200, 3000)} people ranked '{r.choice(ISSUES)}' as the top complaint."
        ),
        lambda: f"Budget for the {r.choice(TEAMS)} team is capped at ${between(r, 50, 900)}k until {date(r)}.",
        lambda: (
            f"The incident lasted {between(r, 12, 240)} minutes and affected about {between(r, 1, 30)} % of requests."
        ),
    ]
    return " ".join(r.choice(bank)() for _ in range(sentences))


def ticket(r: random.Random) -> str:
    close = r.choice(["Can you help?", "What can you do?", "Please sort this out.", "Thanks."])
    return (
        f"Hi, this is {name(r)}. I ordered {r.choice(PRODUCTS)} on {date(r)} (order {order_id(r)}) and "
        f"{r.choice(ISSUES)}. {close}"
    )


# -- simple ------------------------------------------------------------------------------------------------------


def simple_support(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    if r.random() < 0.45:
        text = (
            f"Classify this support ticket as one of: {', '.join(LABELS)}. Answer with the label only.\n\n"
            f"Ticket: {ticket(r)}"
        )
        return "classify", [user(text)], between(r, 1, 4), {"max_tokens": 16}
    return "support_reply", [support_system(r, 0), user(ticket(r))], between(r, 70, 160), {}


def simple_extract(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    who, oid, amount = name(r), order_id(r), money(r)
    email = (
        f"From: {who.lower().replace(' ', '.')}@example.com\nSubject: {r.choice(['Order', 'Refund', 'Invoice'])}"
        f" {oid}\n\nHello, I paid ${amount} for {r.choice(PRODUCTS)} on {date(r)}. {r.choice(ISSUES)}.\n"
        f"Regards, {who}"
    )
    text = f"Extract name, order_id and amount from this email. Reply with JSON only.\n\n{email}"
    return "extract_json", [user(text)], between(r, 25, 60), {"response_format": {"type": "json_object"}}


def simple_summarize(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    text = f"Summarize in one sentence:\n\n{paragraph(r, between(r, 2, 4))}"
    return "summarize_short", [user(text)], between(r, 25, 60), {}


def simple_code(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    table, cols = r.choice(TABLES)
    asks = [
        f"Write a SQL query that returns {r.choice(cols[1:])} from {table} where id = {between(r, 1, 9999)}.",
        f"Write a regex that matches an order id like {order_id(r)}.",
        f"In {r.choice(LANGS)}, how do I read an environment variable named "
        f"{r.choice(TEAMS).upper().replace(' ', '_')}_URL with a default?",
        f"Write a SQL query that counts the rows of {table} created after '{date(r)}'.",
    ]
    return "code_snippet", [user(r.choice(asks))], between(r, 30, 90), {}


def simple_plan(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    tasks = [
        f"moving our team offsite to {r.choice(CITIES)}",
        f"onboarding {name(r)} to the {r.choice(TEAMS)} team",
        f"renewing the contract with {r.choice(COMPANIES)}",
        f"preparing the {r.choice(TEAMS)} demo on {date(r)}",
    ]
    return "checklist", [user(f"Give me a short checklist for {r.choice(tasks)}.")], between(r, 60, 130), {}


def simple_math(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    item, price = r.choice(ITEMS)
    count = between(r, 2, 40)
    text = f"{r.choice(FIRST)} buys {count} {item} at ${price:.2f} each. How much is that in total?"
    return "arithmetic", [user(text)], between(r, 20, 60), {}


# -- medium ------------------------------------------------------------------------------------------------------


def medium_support(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    first, second = r.sample(ISSUES, 2)
    text = (
        f"Customer {name(r)}, order {order_id(r)} ({r.choice(PRODUCTS)}, ${money(r)}, delivered {date(r)}), "
        f'writes: "{first}, and also {second}. This is the second time I write."\n\nDraft a reply that applies '
        f"the policy to each of the two issues and says exactly what we will do for each."
    )
    return "support_policy", [support_system(r, between(r, 4, 6)), user(text)], between(r, 150, 260), {}


def medium_extract(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    lines = [f"  {between(r, 1, 9)} x {r.choice(PRODUCTS)} .... {money(r)}" for _ in range(between(r, 3, 6))]
    invoice = (
        f"INVOICE  #{between(r, 1000, 99999)}   {r.choice(COMPANIES)}\nbill to: {name(r)}, "
        f"{r.choice(CITIES)}\ndate {date(r)}   due: net {r.choice([15, 30, 45])}\n"
        + "\n".join(lines)
        + f"\nsubtotal ... (see above)   VAT {r.choice([7, 19, 20, 21])}%\nnotes: {r.choice(ISSUES)}"
    )
    text = (
        "Extract this invoice to JSON with keys invoice_number, seller, buyer, date (ISO), due_days, vat_rate and "
        "items (a list of {quantity, description, price}). Compute subtotal and total. JSON only.\n\n" + invoice
    )
    return "extract_invoice", [user(text)], between(r, 120, 220), {"response_format": {"type": "json_object"}}


def medium_summarize(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    kind = r.choice(["meeting notes", "incident report", "weekly status update", "customer interview notes"])
    text = (
        f"Here are the {kind}:\n\n{paragraph(r, between(r, 10, 18))}\n\nSummarize them in 5 bullet points. "
        f"Name the owner and the date of each action item."
    )
    return "summarize_long", [user(text)], between(r, 150, 300), {}


def medium_code(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    (t1, c1), (t2, c2) = r.sample(TABLES, 2)
    if r.random() < 0.5:
        schema = f"{t1}({', '.join(c1)})\n{t2}({', '.join(c2)})"
        text = (
            f"Schema:\n{schema}\n\nWrite a SQL query that returns, per month of {r.choice(c1[1:])}, the number "
            f"of {t1} and the average {r.choice(c2[1:])} of the matching {t2}, for the last "
            f"{between(r, 3, 24)} months, ordered by month."
        )
        return "sql_join", [user(text)], between(r, 90, 200), {}
    task = r.choice(
        [
            "parses an ISO 8601 duration into seconds",
            "merges overlapping time intervals",
            "retries an HTTP call with exponential backoff and jitter",
            "validates an IBAN",
            "groups log lines by request id and returns the slowest requests",
            "converts a nested dict into dotted keys",
        ]
    )
    text = f"Write a {r.choice(LANGS)} function that {task}. Include type hints (or types) and a short docstring."
    return "function", [user(text)], between(r, 150, 320), {}


def medium_plan(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    text = (
        f"We run {r.choice(SYSTEMS)} for the {r.choice(TEAMS)} team and must move to {r.choice(TARGETS)} by "
        f"{date(r)} with at most {between(r, 5, 60)} minutes of downtime. Plan the migration in 5 to 7 steps, "
        f"with each step's dependencies and a rollback for each."
    )
    return "migration_plan", [user(text)], between(r, 220, 420), {}


def medium_math(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    up, off, tax = between(r, 5, 30), between(r, 10, 40), r.choice([7, 8.5, 19, 20])
    item, price = r.choice(ITEMS)
    text = (
        f"A shop sells {item} at ${price:.2f}. It raises the price by {up} %, then runs a {off} % discount, and "
        f"sales tax of {tax} % applies at the till. {r.choice(FIRST)} buys {between(r, 3, 25)} of them. What do "
        f"they pay, and is it more or less than before the two changes? Show the steps."
    )
    return "percent_steps", [user(text)], between(r, 120, 260), {}


# -- complex -----------------------------------------------------------------------------------------------------


def complex_support(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    statuses = ["delivered", "refunded", "lost", "returned"]
    history = "\n".join(
        f"| {order_id(r)} | {date(r)} | ${money(r)} | {r.choice(statuses)} |" for _ in range(between(r, 4, 8))
    )
    text = (
        f"Order history of {name(r)}:\n| order | date | total | status |\n{history}\n\nThe customer disputes a "
        f"chargeback of ${money(r, 50, 900)}, says {r.choice(ISSUES)} and threatens to cancel. Decide, rule by "
        f"rule, what the policy allows (refund, replacement, store credit or none), explain where rules "
        f"conflict, then draft the reply."
    )
    return "support_dispute", [support_system(r, 8), user(text)], between(r, 280, 480), {}


def complex_extract(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    a, b = r.sample(COMPANIES, 2)
    clauses = [
        f"{i}. {a} shall pay {b} EUR {money(r, 1000, 90000)} "
        f"{r.choice(['within 30 days of invoice', 'quarterly in arrears', 'on signature'])}"
        f"{r.choice(['', ', unless the service level falls below 99.5 %', ', less any credits owed'])}."
        for i in range(1, between(r, 5, 9))
    ]
    text = (
        f"Contract between {a} and {b}, signed {date(r)}, term {between(r, 12, 60)} months.\n"
        + "\n".join(clauses)
        + "\n\nExtract to JSON: parties, signed_on (ISO), term_months, and obligations (a list with payer, payee, "
        "amount_cents, schedule, condition or null). Normalize every amount to integer cents. JSON only."
    )
    return "extract_contract", [user(text)], between(r, 260, 520), {"response_format": {"type": "json_object"}}


def complex_summarize(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    text = (
        f"Version A of the policy:\n{paragraph(r, between(r, 8, 12))}\n\nVersion B:\n"
        f"{paragraph(r, between(r, 8, 12))}\n\nCompare the two versions: list every change, who it affects, and "
        f"the three with the largest cost impact, with your reasoning."
    )
    return "compare_documents", [user(text)], between(r, 300, 520), {}


def complex_code(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    lang = r.choice(LANGS)
    task = r.choice(
        [
            "an LRU cache with per-entry TTL that is safe under concurrent access",
            "a rate limiter (token bucket) shared by several workers, with tests for bursts",
            "a CSV importer that streams a 10 GB file, validates rows and reports errors by line",
            "a retrying job queue with visibility timeouts and dead-lettering",
            "an expression parser for + - * / and parentheses with precedence, and its tests",
        ]
    )
    text = (
        f"Implement {task} in {lang}. First explain the design and its trade-offs, then give the code, then the "
        f"unit tests. It must handle the edge cases you list."
    )
    return "module", [user(text)], between(r, 450, 900), {}


def complex_plan(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    who, city = name(r), r.choice(CITIES)
    text = (
        f"You can call these tools: search_flights(from, to, date), book_hotel(city, nights, budget), "
        f"calendar_free(person, day), send_email(to, body). Plan, step by step, a {between(r, 2, 5)}-day trip "
        f"for {who} and {between(r, 2, 6)} colleagues to {city} before {date(r)}: total budget "
        f"${between(r, 2, 12)}k, nobody flies on a day they are busy, hotels within {between(r, 1, 5)} km of the "
        f"office. List each tool call with its arguments, what you do if it fails, and the final itinerary."
    )
    return "agent_plan", [user(text)], between(r, 380, 720), {}


def complex_math(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    n, k = between(r, 6, 15), between(r, 2, 5)
    asks = [
        f"A team of {n} people must pick a committee of {k} with at least one person from each of 2 "
        f"departments ({n // 2} and {n - n // 2} people). How many committees are possible? Then: what is the "
        f"probability that a random committee has exactly one person from the smaller department?",
        f"A delivery drone flies {between(r, 10, 40)} km at {between(r, 30, 60)} km/h into a headwind of "
        f"{between(r, 5, 15)} km/h and back with it as a tailwind. Its battery lasts {between(r, 40, 90)} "
        f"minutes. Does it make the round trip? Find the largest headwind at which it still does.",
        f"Three machines make {between(r, 100, 300)}, {between(r, 100, 300)} and {between(r, 100, 300)} parts "
        f"an hour with defect rates {between(r, 1, 5)} %, {between(r, 1, 5)} % and {between(r, 1, 5)} %. A "
        f"part is defective: what is the probability each machine made it? Reason step by step.",
    ]
    return "word_problem", [user(r.choice(asks))], between(r, 300, 620), {}


# -- breakthrough ------------------------------------------------------------------------------------------------


def hard_code(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    task = r.choice(
        [
            "a lock-free multi-producer multi-consumer queue",
            "an interval tree supporting insert, delete and stabbing queries in O(log n)",
            "a consistent-hashing ring with virtual nodes and minimal movement on resize",
            "a Raft log compaction step that keeps linearizable reads",
            f"an O(n log n) algorithm for the longest chain of {between(r, 2, 4)}-dimensional boxes",
        ]
    )
    text = (
        f"Design {task} in {r.choice(LANGS)}. State the invariants, prove the operations correct and give "
        f"their complexity, then implement it with tests that would catch a violation of each invariant."
    )
    return "algorithm_proof", [user(text)], between(r, 900, 1600), {}


def hard_plan(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    people = r.sample(FIRST, between(r, 6, 9))
    rules = [f"{a} and {b} cannot be in the same session" for a, b in zip(people[::2], people[1::2], strict=False)]
    rules += [
        f"{r.choice(people)} is only free on day {between(r, 1, 3)}",
        f"room capacity is {between(r, 3, 5)}",
        f"every person attends exactly {between(r, 2, 3)} sessions",
        f"{r.choice(people)} must attend every session {r.choice(people)} attends",
    ]
    text = (
        f"Schedule {between(r, 5, 8)} workshop sessions over 3 days in {between(r, 2, 3)} rooms for "
        f"{', '.join(people)}. Constraints: " + "; ".join(rules) + ". Find a schedule that meets every "
        "constraint or prove that none exists, and justify each step."
    )
    return "constraint_schedule", [user(text)], between(r, 700, 1300), {}


def hard_math(r: random.Random) -> tuple[str, list[dict[str, str]], int, dict[str, Any]]:
    k = between(r, 2, 9)
    claims = [
        "for every integer n >= 1, the sum of the first n odd cubes is n^2 (2n^2 - 1)",
        f"there are infinitely many primes congruent to {r.choice(['2 mod 3', '3 mod 4', '5 mod 6'])}",
        f"every tournament on n >= {k} vertices has a Hamiltonian path",
        f"sqrt({k * k + 1}) is irrational",
        f"among any {k + 1} integers two have a difference divisible by {k}",
        "a graph with n vertices and more than n^2/4 edges contains a triangle",
        f"for positive reals a, b, c with abc = 1, a^{k} + b^{k} + c^{k} >= a + b + c",
    ]
    text = f"Prove or disprove: {r.choice(claims)}. Give a complete, rigorous proof; state each lemma you use."
    return "proof", [user(text)], between(r, 700, 1500), {}


GENERATORS: dict[str, dict[str, Gen]] = {
    "simple": {
        "support": simple_support,
        "extract": simple_extract,
        "summarize": simple_summarize,
        "code": simple_code,
        "plan": simple_plan,
        "math": simple_math,
    },
    "medium": {
        "support": medium_support,
        "extract": medium_extract,
        "summarize": medium_summarize,
        "code": medium_code,
        "plan": medium_plan,
        "math": medium_math,
    },
    "complex": {
        "support": complex_support,
        "extract": complex_extract,
        "summarize": complex_summarize,
        "code": complex_code,
        "plan": complex_plan,
        "math": complex_math,
    },
    "breakthrough": {"code": hard_code, "plan": hard_plan, "math": hard_math},
}


REQUESTS, REPEAT, SEED = 2000, 0.15, 23


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    requests: int = REQUESTS
    repeat: float = REPEAT
    seed: int = SEED


def counts(total: int) -> dict[str, int]:
    """Requests per class, the mix exactly (rounding goes to the simple class)."""
    out = {c: round(total * share) for c, (share, _) in CLASSES.items() if c != "simple"}
    return {"simple": total - sum(out.values()), **out}


def max_tokens_for(tokens: int) -> int:
    """The budget an agent would set: the next power of two at or above 1.5x a good answer's length."""
    budget = 16
    while budget < tokens * 1.5:
        budget *= 2
    return budget


def build(options: Options) -> list[dict[str, Any]]:
    if not 0.0 <= options.repeat < 1.0:
        raise ValueError(f"--repeat must be within [0, 1), got {options.repeat}")
    if options.requests < 20:
        raise ValueError(f"--requests must be at least 20 (so every class has requests), got {options.requests}")
    r = random.Random(options.seed)
    seen: set[str] = set()
    pool: list[dict[str, Any]] = []
    for klass, n in counts(options.requests).items():
        repeats = round(n * options.repeat)
        unique: list[dict[str, Any]] = []
        tasks, weights = zip(*TASK_MIX[klass].items(), strict=True)
        low, high = CLASSES[klass][1]
        while len(unique) < n - repeats:
            task = r.choices(tasks, weights)[0]
            kind, messages, tokens, params = GENERATORS[klass][task](r)
            key = json.dumps([task, messages], sort_keys=True)
            if key in seen:
                continue  # a filler combination drawn twice: only --repeat makes duplicates
            seen.add(key)
            unique.append(
                {
                    "task": task,
                    "kind": kind,
                    "class": klass,
                    "difficulty": round(r.uniform(low, high), 3),
                    "messages": messages,
                    "completion_tokens": tokens,
                    "params": {
                        "max_tokens": params.pop("max_tokens", max_tokens_for(tokens)),
                        "temperature": 0,
                        **params,
                    },
                }
            )
        pool += unique + [dict(r.choice(unique)) for _ in range(repeats)]
    r.shuffle(pool)
    first_seen: dict[str, str] = {}
    out = []
    for i, request in enumerate(pool, 1):
        rid = f"r{i:05d}"
        key = json.dumps([request["task"], request["messages"], request["params"]], sort_keys=True)
        out.append({"id": rid, **request, "repeat_of": first_seen.get(key)})
        first_seen.setdefault(key, rid)
    return out


def write(requests: list[dict[str, Any]], out: Path) -> None:
    out.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in requests), encoding="utf-8")


def readme(requests: list[dict[str, Any]], options: Options, out: Path) -> str:
    n = len(requests)
    by_class = Counter(q["class"] for q in requests)
    by_task = Counter(q["task"] for q in requests)
    repeats = sum(q["repeat_of"] is not None for q in requests)
    prompt_chars = sorted(sum(len(m["content"]) for m in q["messages"]) for q in requests)
    lines = [
        "# The cost benchmark's workload",
        "",
        f"`{out.name}`: {n:,} requests, one JSON object a line, written by `bench/workload/make.py "
        f"--requests {options.requests} --repeat {options.repeat} --seed {options.seed}` (deterministic: run it "
        "again to get the same bytes). `bench/cost.py` sends them; this file is written with them.",
        "",
        f"**Repeat rate: {repeats / n:.1%}** ({repeats:,} requests are exact duplicates of an earlier one: same "
        "messages, parameters and difficulty; `repeat_of` names the first). A response cache can serve them.",
        "",
        "| class | requests | share | difficulty band |",
        "|---|---:|---:|---|",
        *(
            f"| {c} | {by_class[c]:,} | {by_class[c] / n:.1%} | {lo:.2f} to {hi:.2f} |"
            for c, (_, (lo, hi)) in CLASSES.items()
        ),
        "",
        "Tasks: " + ", ".join(f"{t} {by_task[t]:,}" for t in sorted(by_task)) + ". Prompt length: median "
        f"{prompt_chars[n // 2]:,} characters, longest {prompt_chars[-1]:,}.",
        "",
        "Fields: `id`, `task` (the registry task it is sent to), `kind` (the template), `class`, `difficulty` (sent as",
        "`x_bench_difficulty`: the simulator's quality model answers acceptably when a model's capability plus noise",
        "covers it), `messages`, `params` (max_tokens, temperature 0, response_format for extraction),",
        "`completion_tokens` (a good answer's length, sent as `x_bench_completion_tokens`), `repeat_of`.",
        "",
        "Each class draws its tasks from its own mix (a support task gets easy and hard requests alike); the prompts",
        "are templates filled with varied names, products, orders, amounts, dates and pasted paragraphs.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=REQUESTS, help="how many (2000)")
    parser.add_argument(
        "--repeat",
        type=float,
        default=REPEAT,
        help="share of requests that are exact duplicates of an earlier one (0.15)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help="seeds every draw (23)")
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "requests.jsonl",
        help="the JSONL file; README.md is written beside it (bench/workload/requests.jsonl)",
    )
    args = parser.parse_args(argv)
    options = Options(requests=args.requests, repeat=args.repeat, seed=args.seed)
    try:
        requests = build(options)
    except ValueError as exc:
        parser.error(str(exc))
    write(requests, args.out)
    (args.out.parent / "README.md").write_text(readme(requests, options, args.out), encoding="utf-8")
    print(f"{args.out}: {len(requests):,} requests")
    return 0


if __name__ == "__main__":
    sys.exit(main())
