"""`taskrouter whatif`: what the requests in the attempt log would have cost under another registry or catalog,
from their own token counts. No model is called.

Each request of the last --days days that was answered is replayed once: the tokens of the call that answered it
(prompt, cached and completion) are priced at the first model of the chain the new registry gives its task (for
an answer from a tier's list, the new registry's list of that tier, or the next one up it has; a variant's list
when the request had one), with the new catalog's prices. The log's cost of the same requests counts every call
they made (retries, fallbacks and refused answers too); the replay assumes the new first model answers at once,
so a cheaper model that would often be refused looks better here than it will be: the dashboard's Spend page
shows how often requests escalate now. Cache hits cost nothing either way and are not replayed.

FILE is a Python file that defines MODEL_REGISTRY and/or MODEL_CATALOG as app/core/ai_models.py does (it is run,
as your own configuration is: point it at files you wrote), or a TOML or JSON file:

    [registry]                       # replaces the registry whole, as MODEL_REGISTRY does
    fast = ["small-model"]
    "fast:complex" = ["large-model"]
    fallback = ["small-model"]

    [catalog."large-model"]  # merged over the current catalog, field by field ([models."..."] too)
    input_price = 0.10
    output_price = 0.50

A registry given replaces the current one whole; a catalog's entries change only the models they name. The
current tables are app/core/ai_models.py's, with MODEL_CATALOG_FILE over the catalog as the router reads it.

Exit codes: 0 done, 1 the database cannot be used, 2 bad input (a file missing or malformed, a task no registry
or log knows, no database where --db or the settings say).
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys
import tomllib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.commands.store_arg import add_store_option
from app.config import load_settings
from app.errors import ConfigError
from app.text import plain_terminal

if TYPE_CHECKING:
    from app.config import Settings
    from app.registry.catalog import ModelInfo
    from app.store.backend import Connection

MAX_DAYS = 3650
_NO_PRICE = "no price for {model} in the catalog replayed"
_NO_TOKENS = "no token counts logged"
_NO_TASK = "the registry replayed gives the task no model"
_NO_LOGGED_COST = "the logged cost is unknown (its model had no price)"


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"must be a whole number of days from 1 to {MAX_DAYS} (got {text!r})")
    return days


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "whatif",
        help="replay the logged requests' token counts under another registry or catalog and print what "
        "they would have cost, per task (no model is called)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--registry",
        type=Path,
        default=None,
        metavar="FILE",
        help="a .py file defining MODEL_REGISTRY and/or MODEL_CATALOG, or a .toml/.json file with "
        '[registry] and/or [catalog."<model>"] tables',
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        default=None,
        metavar="FILE",
        help="prices from this file instead (a .py file defining MODEL_CATALOG, or a .toml/.json "
        'file with [catalog."<model>"] or MODEL_CATALOG_FILE\'s [models."<model>"] tables)',
    )
    parser.add_argument("--days", type=_days, default=7, metavar="N", help="replay the last N days (default 7)")
    parser.add_argument("--task", default=None, metavar="TASK", help="only this task")
    add_store_option(parser)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    from app.commands.store_arg import unusable_store
    from app.store import StoreProblem, backend_for
    from app.store.target import chosen_store

    if args.registry is None and args.catalog is None:
        return _fail("give --registry FILE, --catalog FILE or both: the tables to replay the log under", 2)
    try:
        settings = load_settings()
        tables = new_tables(settings, registry_file=args.registry, catalog_file=args.catalog)
    except ConfigError as exc:
        return _fail(str(exc), 2)
    store = backend_for(chosen_store(args.db, settings))
    if (code := unusable_store(store.target, "whatif", thorough=False)) is not None:
        return code
    since = iso(datetime.now(UTC) - timedelta(days=args.days))
    try:
        conn = store.open_reader(application="taskrouter-whatif")
        if conn is None:  # removed since it was looked at
            return _fail(f"there is no attempts database at {store.label}", 2)
        try:
            answers = read_answers(conn, since=since, task=args.task)
            if args.task is not None and not answers.groups and not knows_task(args.task, tables):
                return _fail(unknown_task(args.task, tables, read_tasks(conn, since)), 2)
        finally:
            conn.close()
    except StoreProblem as problem:
        return _fail(f"the attempts database cannot be used: {problem}", 1)
    report = replay(answers, tables, plain_settings(settings))
    where = {"store": store.label, "since": since, "days": args.days, "task": args.task}
    if args.json:
        print(json.dumps({**where, **tables.sources(), **report.to_json()}, indent=2))
    else:
        # Task and model names are read from the store: printed without any escape sequence they may hold.
        print(plain_terminal(render(report, tables, days=args.days, store=store.label, task=args.task), multiline=True))
    return 0


def _fail(message: str, code: int) -> int:
    print(f"taskrouter whatif: {plain_terminal(message, multiline=True)}", file=sys.stderr)
    return code


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- the tables ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tables:
    """The registry and catalog the log is replayed under, and where each came from."""

    registry: Mapping[str, Sequence[str]]
    catalog: Mapping[str, ModelInfo]
    registry_from: str  # a file's path, or "current"
    catalog_from: str

    def sources(self) -> dict[str, str]:
        return {"registry": self.registry_from, "catalog": self.catalog_from}


def current_tables(settings: Settings) -> tuple[dict[str, list[str]], dict[str, ModelInfo]]:
    """The tables the router reads now: app/core/ai_models.py's, MODEL_CATALOG_FILE merged over the catalog."""
    from app.core import ai_models  # read at call time: tests and plugins edit the tables in place
    from app.registry.catalog import load_catalog_file

    catalog = dict(ai_models.MODEL_CATALOG)
    if settings.model_catalog_file:
        catalog.update(load_catalog_file(Path(settings.model_catalog_file), catalog))
    return {key: list(models) for key, models in ai_models.MODEL_REGISTRY.items()}, catalog


def new_tables(settings: Settings, *, registry_file: Path | None, catalog_file: Path | None) -> Tables:
    """The current tables with what the files give: a registry replaces the registry whole, catalog entries
    replace (Python) or amend (TOML, JSON) the entries of the models they name. Raises ConfigError."""
    registry, catalog = current_tables(settings)
    registry_from = catalog_from = "current"
    if registry_file is not None:
        found_registry, found_catalog = read_tables(registry_file, "--registry", catalog)
        if found_registry is None and found_catalog is None:
            raise ConfigError(
                f"--registry {registry_file} defines neither a registry nor a catalog: give it "
                "MODEL_REGISTRY (a .py file) or a [registry] table (.toml, .json)"
            )
        if found_registry is not None:
            registry, registry_from = found_registry, str(registry_file)
        if found_catalog is not None:
            catalog, catalog_from = {**catalog, **found_catalog}, str(registry_file)
    if catalog_file is not None:
        found_registry, found_catalog = read_tables(catalog_file, "--catalog", catalog)
        if found_catalog is None:
            raise ConfigError(
                f"--catalog {catalog_file} defines no catalog: give it MODEL_CATALOG (a .py file) or "
                '[catalog."<model>"] tables (.toml, .json)'
            )
        if found_registry is not None:
            raise ConfigError(f"--catalog {catalog_file} also defines a registry: pass that file as --registry")
        catalog, catalog_from = {**catalog, **found_catalog}, str(catalog_file)
    return Tables(registry, catalog, registry_from, catalog_from)


def read_tables(
    path: Path, flag: str, base: Mapping[str, ModelInfo]
) -> tuple[dict[str, list[str]] | None, dict[str, ModelInfo] | None]:
    """(registry, catalog entries) of a file, each None when it gives none. Raises ConfigError."""
    if not path.is_file():
        raise ConfigError(f"{flag} {path}: there is no such file")
    suffix = path.suffix.lower()
    if suffix == ".py":
        return _python_tables(path, flag)
    if suffix in (".toml", ".json"):
        return _data_tables(path, flag, base)
    raise ConfigError(
        f"{flag} {path}: give a .py file (defining MODEL_REGISTRY and/or MODEL_CATALOG, as "
        'app/core/ai_models.py does) or a .toml or .json file ([registry], [catalog."<model>"])'
    )


def _python_tables(path: Path, flag: str) -> tuple[dict[str, list[str]] | None, dict[str, ModelInfo] | None]:
    from app.registry.catalog import ModelInfo

    try:
        # Its own namespace, as a module of the user's configuration: nothing of ours is handed to it.
        namespace = runpy.run_path(str(path), run_name="taskrouter_whatif_tables")
    except SyntaxError as exc:
        raise ConfigError(f"{flag} {path}, line {exc.lineno}: it is not valid Python: {exc.msg}") from None
    except Exception as exc:  # the user's code: whatever it raises is said, in one line
        raise ConfigError(f"{flag} {path}: running it failed: {type(exc).__name__}: {exc}") from None
    registry = namespace.get("MODEL_REGISTRY")
    catalog = namespace.get("MODEL_CATALOG")
    if catalog is not None:
        if not isinstance(catalog, Mapping) or not all(
            isinstance(k, str) and isinstance(v, ModelInfo) for k, v in catalog.items()
        ):
            raise ConfigError(
                f"{flag} {path}: MODEL_CATALOG must map model names to ModelInfo(...) entries "
                "(from app.registry.catalog import ModelInfo), as app/core/ai_models.py does"
            )
        catalog = dict(catalog)
    return (None if registry is None else _registry(registry, f"{flag} {path}: MODEL_REGISTRY")), catalog


def _data_tables(
    path: Path, flag: str, base: Mapping[str, ModelInfo]
) -> tuple[dict[str, list[str]] | None, dict[str, ModelInfo] | None]:
    from app.registry.catalog import catalog_entries

    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{flag} {path}: cannot read it: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f'{flag} {path}: expected a table of [registry] and [catalog."<model>"] entries')
    unknown = sorted(set(data) - {"registry", "catalog", "models"})
    if unknown:
        raise ConfigError(
            f"{flag} {path}: unknown table {', '.join(map(repr, unknown))}; known: registry, catalog "
            "(or models, as in MODEL_CATALOG_FILE)"
        )
    if "catalog" in data and "models" in data:
        raise ConfigError(f'{flag} {path}: give the prices as [catalog."<model>"] or [models."<model>"], not both')
    registry = None if "registry" not in data else _registry(data["registry"], f"{flag} {path}: registry")
    name = "catalog" if "catalog" in data else "models"
    entries = data.get(name)
    if entries is None:
        return registry, None
    if not isinstance(entries, dict):
        raise ConfigError(f'{flag} {path}: {name} must hold a [{name}."<model name>"] table per model')
    return registry, catalog_entries(entries, base, source=f"{flag} {path}: {name}")


def _registry(value: object, where: str) -> dict[str, list[str]]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f'{where} must map task types to lists of model names ({{"fast": ["<model>"]}})')
    out: dict[str, list[str]] = {}
    for key, models in value.items():
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f"{where}: a task type must be a name, got {key!r}")
        if (
            isinstance(models, str)
            or not isinstance(models, Sequence)
            or not all(isinstance(m, str) and m.strip() for m in models)
        ):
            raise ConfigError(f"{where}[{key!r}] must be a list of model names, got {models!r}")
        out[key] = list(models)
    return out


def plain_settings(settings: Settings) -> Settings:
    """The settings without FORCE_MODEL and DEFAULT_<TASK>_MODEL: the replay follows the registry alone."""
    return settings.model_copy(update={"force_model": None, "default_models": {}})


def knows_task(task: str, tables: Tables) -> bool:
    return any(key.partition(":")[0] == task for key in tables.registry)


def unknown_task(task: str, tables: Tables, logged: Sequence[str]) -> str:
    from app.registry.chain import FALLBACK_KEY

    known = sorted({key.partition(":")[0] for key in tables.registry if key != FALLBACK_KEY} | set(logged))
    return (
        f"unknown task {shown(task)!r}: neither the registry replayed ({tables.registry_from}) nor the log's "
        f"answered requests know it; known: {', '.join(shown(t) for t in known) or 'none'}"
    )


# -- the log -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Group:
    """Answered requests alike for the replay: one task, variant, tier and answering model."""

    task: str
    variant: str | None
    tier: str | None
    model: str
    priced: bool  # the answering calls' logged cost is known (cost_usd not NULL)
    has_tokens: bool  # their prompt and completion token counts were logged
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int  # at most the prompt tokens, row by row
    answer_cost: float  # the answering calls' logged cost
    other_cost: float  # what the same requests' other calls cost (retries, fallbacks, refused answers)


@dataclass(frozen=True, slots=True)
class Answers:
    groups: list[Group]
    cache_hits: int  # requests answered from the response cache: not replayed
    first: str | None  # created_at of the oldest answer replayed


def read_answers(conn: Connection, *, since: str, task: str | None = None) -> Answers:
    """The answered requests since `since`, grouped, each with its answering call's tokens and every call's cost.
    Reads what the store has: a log written before tiers has no tier column, every request then untiered."""
    from app.store.dialect import dialect_of

    dialect = dialect_of(conn)
    columns = dialect.attempt_columns(conn)
    if "outcome" not in columns:  # no attempts table yet: both backends read its columns as none
        return Answers([], 0, None)
    tier = "a.tier" if "tier" in columns else "NULL"
    variant = "a.variant" if "variant" in columns else "NULL"
    cached = "COALESCE(a.cached_tokens, 0)" if "cached_tokens" in columns else "0"
    where, params = "a.created_at >= ?", [since]
    if task is not None:
        where += " AND a.task_type = ?"
        params.append(task)
    # One row per group, summed by the store; a request's other calls are found by its request_id (index).
    rows = conn.execute(
        f"""SELECT task_type, variant, tier, model, priced, has_tokens, COUNT(*), SUM(prompt), SUM(completion),
                   SUM(cached), SUM(cost), SUM(other), MIN(created_at)
            FROM (SELECT a.task_type, {variant} AS variant, {tier} AS tier, a.model,
                         CASE WHEN a.cost_usd IS NULL THEN 0 ELSE 1 END AS priced,
                         CASE WHEN a.prompt_tokens IS NULL OR a.completion_tokens IS NULL THEN 0 ELSE 1 END
                             AS has_tokens,
                         COALESCE(a.prompt_tokens, 0) AS prompt, COALESCE(a.completion_tokens, 0) AS completion,
                         CASE WHEN {cached} > COALESCE(a.prompt_tokens, 0) THEN COALESCE(a.prompt_tokens, 0)
                              ELSE {cached} END AS cached,
                         COALESCE(a.cost_usd, 0) AS cost,
                         (SELECT COALESCE(SUM(o.cost_usd), 0) FROM attempts AS o
                          WHERE o.request_id = a.request_id AND o.outcome <> 'success'
                          {dialect.same_request_days("o", "a")}) AS other,
                         a.created_at
                  FROM attempts AS a WHERE a.outcome = 'success' AND {where}) AS answered
            GROUP BY task_type, variant, tier, model, priced, has_tokens""",
        params,
    ).fetchall()
    hits = conn.execute(
        f"SELECT COUNT(*) FROM attempts AS a WHERE a.outcome = 'cache_hit' AND {where}", params
    ).fetchone()[0]
    # int() and float(): PostgreSQL sums counts and sums as numeric (Decimal).
    groups = [
        Group(
            r[0],
            r[1] or None,
            r[2] or None,
            r[3],
            bool(r[4]),
            bool(r[5]),
            int(r[6]),
            int(r[7] or 0),
            int(r[8] or 0),
            int(r[9] or 0),
            float(r[10] or 0),
            float(r[11] or 0),
        )
        for r in rows
    ]
    return Answers(groups, int(hits or 0), min((r[12] for r in rows), default=None))


def read_tasks(conn: Connection, since: str) -> list[str]:
    """The task types of the answers since `since` (for an error naming the known ones)."""
    try:
        rows = conn.execute(
            "SELECT DISTINCT task_type FROM attempts WHERE outcome = 'success' AND created_at >= ?", (since,)
        ).fetchall()
    except Exception:  # only for a message: a store that cannot say has no task to add
        return []
    return sorted(r[0] for r in rows if r[0])


# -- the replay ----------------------------------------------------------------------------------------------


@dataclass(slots=True)
class TaskCost:
    """One task's answered requests: those priced both ways, what they cost as logged and under the new tables."""

    task: str
    requests: int = 0  # answered in the window
    compared: int = 0  # of which priced both ways (the cost columns cover these only)
    logged: float = 0.0  # every call of the compared requests, as logged
    other_calls: float = 0.0  # of which calls that did not answer
    replayed: float = 0.0  # their answers' tokens at the new first model's price
    left_out: dict[str, int] = field(default_factory=dict)  # why a request could not be compared -> requests
    new_models: dict[str, int] = field(default_factory=dict)  # the new first model -> requests it would answer

    @property
    def difference(self) -> float:
        return self.replayed - self.logged

    @property
    def change(self) -> float | None:
        """The difference as a share of the logged cost; None when nothing was logged."""
        return self.difference / self.logged if self.logged else None

    def add(self, other: TaskCost) -> None:
        self.requests += other.requests
        self.compared += other.compared
        self.logged += other.logged
        self.other_calls += other.other_calls
        self.replayed += other.replayed
        for counts, more in ((self.left_out, other.left_out), (self.new_models, other.new_models)):
            for key, n in more.items():
                counts[key] = counts.get(key, 0) + n

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "requests": self.requests,
            "compared": self.compared,
            "logged_usd": self.logged,
            "other_calls_usd": self.other_calls,
            "replayed_usd": self.replayed,
            "difference_usd": self.difference,
            "change": self.change,
            "left_out": self.left_out,
            "new_first_models": self.new_models,
        }


@dataclass(frozen=True, slots=True)
class Report:
    tasks: list[TaskCost]  # by task name
    total: TaskCost
    cache_hits: int
    first: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "tasks": [t.to_json() for t in self.tasks],
            "total": self.total.to_json(),
            "cache_hits_not_replayed": self.cache_hits,
            "oldest_answer": self.first,
        }


def first_model(group: Group, registry: Mapping[str, Sequence[str]], settings: Settings) -> str | None:
    """The model that would answer first under `registry`: the head of the chain the router would build for the
    request's task, variant and tier. None when the registry has no such task."""
    from app.errors import UnknownTaskError
    from app.registry.chain import build_chain
    from app.types import TIERS

    tier = group.tier if group.tier in TIERS else None
    try:
        chain = build_chain(group.task, registry, settings, group.variant, (), tier)
    except UnknownTaskError:
        return None
    return chain.models[0] if chain.models else None


def replay(answers: Answers, tables: Tables, settings: Settings) -> Report:
    from app.registry.catalog import cost_usd
    from app.types import Usage

    by_task: dict[str, TaskCost] = defaultdict(lambda: TaskCost(""))
    for group in answers.groups:
        line = by_task[group.task]
        line.task = group.task
        line.requests += group.requests
        model = first_model(group, tables.registry, settings)
        info = tables.catalog.get(model) if model is not None else None
        usage = Usage(
            prompt_tokens=group.prompt_tokens,
            completion_tokens=group.completion_tokens,
            total_tokens=group.prompt_tokens + group.completion_tokens,
            cached_tokens=group.cached_tokens,
        )
        cost = cost_usd(info, usage)
        if model is not None:
            line.new_models[model] = line.new_models.get(model, 0) + group.requests
        why = (
            _NO_TASK
            if model is None
            else _NO_TOKENS
            if not group.has_tokens
            else _NO_LOGGED_COST
            if not group.priced
            else _NO_PRICE.format(model=model)
            if cost is None
            else None
        )
        if why is not None:
            line.left_out[why] = line.left_out.get(why, 0) + group.requests
            continue
        assert cost is not None
        line.compared += group.requests
        line.logged += group.answer_cost + group.other_cost
        line.other_calls += group.other_cost
        line.replayed += cost
    tasks = [by_task[name] for name in sorted(by_task)]
    total = TaskCost("total")
    for line in tasks:
        total.add(line)
    return Report(tasks, total, answers.cache_hits, answers.first)


# -- the text ------------------------------------------------------------------------------------------------

_HEADERS = ("TASK", "REQUESTS", "COMPARED", "LOGGED", "OTHER CALLS", "REPLAYED", "DIFFERENCE", "CHANGE")
_RIGHT = frozenset(range(1, len(_HEADERS)))


def shown(text: object) -> str:
    """Text from the database or a file, safe to print: control characters (escape sequences a terminal would
    obey, line breaks, bidirectional overrides) become '?'."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


def usd(value: float, *, signed: bool = False) -> str:
    sign = ("+" if value > 0 else "-" if value < 0 else " ") if signed else ("-" if value < 0 else "")
    return f"{sign}${abs(value):,.6f}"


def change(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _cells(line: TaskCost) -> tuple[str, ...]:
    return (
        shown(line.task),
        f"{line.requests:,}",
        f"{line.compared:,}",
        usd(line.logged),
        usd(line.other_calls),
        usd(line.replayed),
        usd(line.difference, signed=True),
        change(line.change),
    )


def render(report: Report, tables: Tables, *, days: int, store: str, task: str | None = None) -> str:
    scope = f"task {shown(task)}" if task else "every task"
    head = [
        f"taskrouter whatif: the answered requests of the last {days} day{'s' if days != 1 else ''} in "
        f"{shown(store)} ({scope})",
        f"replayed under registry: {shown(tables.registry_from)}; catalog: {shown(tables.catalog_from)}",
    ]
    if not report.tasks:
        return "\n".join([*head, "no answered request in that window: nothing to replay"])
    if report.first:
        head.append(f"the oldest answer in the window: {report.first[:19].replace('T', ' ')} UTC")
    table = [_HEADERS, *(_cells(line) for line in report.tasks), _cells(report.total)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(
            v.rjust(w) if i in _RIGHT else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rows = [line(r) for r in table]
    rows.insert(len(rows) - 1, "-" * len(rows[0]))
    notes = [
        "",
        "LOGGED: every call of the compared requests; OTHER CALLS: those of them that did not answer",
        "(retries, fallbacks, refused answers). REPLAYED: each answer's tokens at the price of the first model",
        "of the new chain, as if it answered at once. COMPARED: the requests priced both ways.",
        "",
    ]
    for line_ in report.tasks:
        models = ", ".join(f"{shown(m)} ({n:,})" for m, n in sorted(line_.new_models.items(), key=lambda i: -i[1]))
        if models:
            notes.append(f"{shown(line_.task)}: first model under the new registry: {models}")
        for why, n in sorted(line_.left_out.items()):
            notes.append(f"{shown(line_.task)}: {n:,} request{'s' if n != 1 else ''} not compared: {shown(why)}")
    if report.cache_hits:
        notes.append(
            f"{report.cache_hits:,} cache hit{'s' if report.cache_hits != 1 else ''} not replayed (free either way)"
        )
    return "\n".join([*head, "", *rows, *notes])
