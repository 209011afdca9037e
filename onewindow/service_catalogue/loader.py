"""Load the catalogue YAML files and validate them, naming file, line, entry and field."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from onewindow.service_catalogue import schema

FILES = ("city.yml", "offices.yml", "services.yml", "life_events.yml", "report_categories.yml")
SHARED_ALIAS_KIND = "service"  # only services may share an alias (the assistant then asks which)
KIND_FILES = {
    "service": "services.yml",
    "office": "offices.yml",
    "district": "city.yml",
    "life_event": "life_events.yml",
    "report_category": "report_categories.yml",
}


class CatalogueError(Exception):
    """The catalogue has problems; `problems` lists each one, fully located."""

    def __init__(self, problems: List[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"The service catalogue has {len(problems)} problem(s):\n{listing}")


@dataclass
class Catalogue:
    city: Dict[str, Any]
    districts: List[Dict[str, Any]]
    offices: List[Dict[str, Any]]
    services: List[Dict[str, Any]]
    life_events: List[Dict[str, Any]]
    report_categories: List[Dict[str, Any]]

    def aliases(self) -> Dict[str, Dict[str, List[str]]]:
        """kind -> phrase -> ids it may mean (the id's own name counts as an alias)."""
        table: Dict[str, Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
        kinds = {
            "service": self.services,
            "office": self.offices,
            "district": self.districts,
            "life_event": self.life_events,
            "report_category": self.report_categories,
        }
        for kind, entries in kinds.items():
            for entry in entries:
                for phrase in [entry["name"].lower(), *entry["aliases"]]:
                    if entry["id"] not in table[kind][phrase]:
                        table[kind][phrase].append(entry["id"])
        return {kind: dict(phrases) for kind, phrases in table.items()}


@dataclass
class _Reader:
    """Collects problems while reading one catalogue folder."""

    folder: Path
    problems: List[str] = field(default_factory=list)
    # (file name, entry id) -> (where, the entry as read, with its line numbers)
    read: Dict[Tuple[str, str], Tuple[str, Any]] = field(default_factory=dict)

    def load(self, name: str, top_key: str) -> Any:
        path = self.folder / name
        if not path.exists():
            self.problems.append(f"{path}: file is missing")
            return None
        try:
            document = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as error:
            self.problems.append(f"{path}: not UTF-8 text (byte {error.start} cannot be read); save the file as UTF-8")
            return None
        except YAMLError as error:
            self.problems.append(f"{path}: not valid YAML: {error}".replace("\n", " "))
            return None
        if not isinstance(document, dict) or top_key not in document:
            self.problems.append(f"{path}: must start with '{top_key}:'")
            return None
        return document[top_key]

    def entries(self, name: str, top_key: str, rules: schema.Schema) -> List[Dict[str, Any]]:
        items = self.load(name, top_key)
        if items is None:
            return []
        if not isinstance(items, list):
            self.problems.append(f"{self.folder / name}: '{top_key}' must be a list")
            return []
        valid, seen = [], set()
        for index, item in enumerate(items):
            where = f"{top_key}[{index}]"
            if self.check(name, where, item, rules):
                if item["id"] in seen:
                    self.report(name, item, where, "id", f"'{item['id']}' is used twice")
                    continue
                seen.add(item["id"])
                self.read[(name, item["id"])] = (where, item)
                valid.append(_plain(item))
        return valid

    def check(self, name: str, where: str, item: Any, rules: schema.Schema) -> bool:
        if not isinstance(item, dict):
            self.problems.append(f"{self.folder / name}: {where}: must be a mapping of fields")
            return False
        ok = True
        for key, (check, required) in rules.items():
            if key not in item:
                if required:
                    self.report(name, item, where, key, "is missing")
                    ok = False
                continue
            problem = check(item[key])
            if problem:
                self.report(name, item, where, key, problem)
                ok = False
        for key in item:
            if key not in rules:
                self.report(name, item, where, str(key), "is not a known field (typo?)")
                ok = False
        return ok

    def report(self, name: str, item: Any, where: str, key: str, problem: str, line: Optional[int] = None) -> None:
        line = line or _line_of(item, key)
        label = f" ({item.get('id')})" if isinstance(item, dict) and item.get("id") else ""
        location = f"{self.folder / name}:{line}" if line else f"{self.folder / name}"
        self.problems.append(f"{location}: {where}{label}: field '{key}' {problem}")

    def report_entry(self, name: str, entry_id: str, key: str, problem: str, line: Optional[int] = None) -> None:
        """Report a problem found after reading (a reference, an alias), at the entry's field."""
        where, item = self.read.get((name, entry_id), ("", {"id": entry_id}))
        self.report(name, item, where, key, problem, line)


def _line_of(item: Any, key: str) -> Optional[int]:
    try:
        if key in item:
            return item.lc.key(key)[0] + 1
        return item.lc.line + 1
    except (AttributeError, KeyError, TypeError):
        return None


def _plain(value: Any) -> Any:
    """ruamel's commented containers to plain dicts and lists."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def load_catalogue(folder: Path) -> Catalogue:
    """Read and validate every catalogue file; raise CatalogueError listing all problems."""
    reader = _Reader(Path(folder))
    city = _load_city(reader)
    districts = city.pop("districts", []) if city else []
    offices = reader.entries("offices.yml", "offices", schema.OFFICE)
    services = reader.entries("services.yml", "services", schema.SERVICE)
    life_events = reader.entries("life_events.yml", "life_events", schema.LIFE_EVENT)
    categories = reader.entries("report_categories.yml", "report_categories", schema.REPORT_CATEGORY)
    catalogue = Catalogue(city or {}, districts, offices, services, life_events, categories)
    if not reader.problems:
        _check_references(catalogue, reader)
    if reader.problems:
        raise CatalogueError(reader.problems)
    return catalogue


def _load_city(reader: _Reader) -> Optional[Dict[str, Any]]:
    city = reader.load("city.yml", "city")
    if city is None or not reader.check("city.yml", "city", city, schema.CITY):
        return None
    if not reader.check("city.yml", "city.hotline", city["hotline"], schema.HOTLINE):
        return None
    districts, seen = [], set()
    for index, district in enumerate(city["districts"]):
        where = f"city.districts[{index}]"
        if reader.check("city.yml", where, district, schema.DISTRICT):
            if district["id"] in seen:
                reader.report("city.yml", district, where, "id", f"'{district['id']}' is used twice")
            else:
                reader.read[("city.yml", district["id"])] = (where, district)
            seen.add(district["id"])
            districts.append(_plain(district))
    plain = _plain(city)
    plain["districts"] = districts
    return plain


def _check_references(catalogue: Catalogue, reader: _Reader) -> None:
    district_ids = {d["id"] for d in catalogue.districts}
    office_ids = {o["id"] for o in catalogue.offices}
    service_ids = {s["id"] for s in catalogue.services}
    for office in catalogue.offices:
        if office["district"] not in district_ids:
            reader.report_entry(
                "offices.yml",
                office["id"],
                "district",
                f"'{office['district']}' is not a district in city.yml",
            )
        _check_stops(office, reader)
    for service in catalogue.services:
        for office_id in service["offices"]:
            if office_id not in office_ids:
                reader.report_entry(
                    "services.yml",
                    service["id"],
                    "offices",
                    f"'{office_id}' is not an office in offices.yml",
                )
    for event in catalogue.life_events:
        _, read = reader.read.get(("life_events.yml", event["id"]), ("", {}))
        for position, step in enumerate(event["steps"], start=1):
            if step["service"] not in service_ids:
                step_read = read["steps"][position - 1] if "steps" in read else None
                reader.report_entry(
                    "life_events.yml",
                    event["id"],
                    "steps",
                    f"step {position}: '{step['service']}' is not a service in services.yml",
                    line=_line_of(step_read, "service"),
                )
    _check_alias_clashes(catalogue, reader)


def _check_stops(office: Dict[str, Any], reader: _Reader) -> None:
    """A mobile point has a stop on every day it is open, and no stop on a closed day; others have none."""
    open_days = {day for day in schema.WEEKDAYS if schema.parse_day_hours(office["hours"][day])}
    stop_days = set(office.get("stops") or {})
    if office["kind"] != "mobile_point":
        if stop_days:
            reader.report_entry("offices.yml", office["id"], "stops", "only a mobile_point has stops")
        return
    missing = [day for day in schema.WEEKDAYS if day in open_days - stop_days]
    closed = [day for day in schema.WEEKDAYS if day in stop_days - open_days]
    if missing:
        reader.report_entry(
            "offices.yml", office["id"], "stops", f"needs a stop on every open day (missing: {', '.join(missing)})"
        )
    if closed:
        reader.report_entry("offices.yml", office["id"], "stops", f"has a stop on a closed day ({', '.join(closed)})")


def _check_alias_clashes(catalogue: Catalogue, reader: _Reader) -> None:
    entries = {
        "service": catalogue.services,
        "office": catalogue.offices,
        "district": catalogue.districts,
        "life_event": catalogue.life_events,
        "report_category": catalogue.report_categories,
    }

    def report(kind: str, entry_id: str, phrase: str, problem: str) -> None:
        entry = next(e for e in entries[kind] if e["id"] == entry_id)
        key = "aliases" if phrase in entry["aliases"] else "name"
        reader.report_entry(KIND_FILES[kind], entry_id, key, f"alias '{phrase}' {problem}")

    aliases = catalogue.aliases()
    owners: Dict[str, set] = defaultdict(set)
    for kind, phrases in aliases.items():
        for phrase in phrases:
            owners[phrase].add(kind)
    for phrase, kinds in sorted(owners.items()):
        if len(kinds) > 1:
            problem = f"is used by more than one kind of entry ({', '.join(sorted(kinds))}); each phrase may name only one kind"
            for kind in sorted(kinds):
                for entry_id in aliases[kind][phrase]:
                    report(kind, entry_id, phrase, problem)
    for kind, phrases in aliases.items():
        for phrase, ids in phrases.items():
            if len(ids) > 1 and kind != SHARED_ALIAS_KIND:
                for entry_id in ids:
                    report(kind, entry_id, phrase, f"is used by {', '.join(ids)}; only services may share an alias")
