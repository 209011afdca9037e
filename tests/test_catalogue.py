"""The service catalogue: the real files load, broken copies are rejected precisely, seeding is safe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from ruamel.yaml import YAML
from sqlalchemy import func, select

from onewindow import settings
from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue, CatalogueError, load_catalogue
from onewindow.service_catalogue.nlu_export import render_lookups
from onewindow.storage import models
from onewindow.storage.db import make_engine, make_sessionmaker
from tests import expect

CATALOGUE = settings.PROJECT_ROOT / "catalogue"
LOOKUPS = settings.PROJECT_ROOT / "nlu" / "catalogue_lookups.yml"

REQUIRED_SERVICES = (
    "birth_registration",
    "child_benefit",
    "school_enrolment",
    "id_card_new",
    "id_card_renewal",
    "passport_new",
    "passport_renewal",
    "household_registration_transfer",
    "marriage_registration",
    "unemployment_benefit",
    "jobseeker_registration",
    "social_security_card",
    "medical_insurance",
    "medical_treatment_other_province",
    "housing_fund_withdrawal",
    "property_registration",
    "pension_application",
    "elderly_care_subsidy",
    "disability_allowance",
    "death_registration",
    "funeral_subsidy",
    "survivors_pension",
    "company_registration",
    "business_licence",
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """A private copy of the real catalogue folder, free to break."""
    folder = tmp_path / "catalogue"
    shutil.copytree(CATALOGUE, folder, ignore=shutil.ignore_patterns("*.md"))
    return folder


# --- the real catalogue -----------------------------------------------------------


def test_real_catalogue_has_enough_services_and_districts(catalogue: Catalogue) -> None:
    assert len(catalogue.services) >= 40
    assert len(catalogue.districts) >= 5


@pytest.mark.parametrize("service_id", REQUIRED_SERVICES)
def test_required_service_is_in_catalogue(catalogue: Catalogue, service_id: str) -> None:
    assert service_id in {s["id"] for s in catalogue.services}


def test_offices_include_rural_and_mobile_points(catalogue: Catalogue) -> None:
    kinds = {o["kind"] for o in catalogue.offices}
    assert {"rural_point", "mobile_point"} <= kinds


def test_every_service_office_and_step_refers_to_existing_entries(catalogue: Catalogue) -> None:
    offices = {o["id"] for o in catalogue.offices}
    services = {s["id"] for s in catalogue.services}
    assert all(set(s["offices"]) <= offices for s in catalogue.services)
    assert all(step["service"] in services for e in catalogue.life_events for step in e["steps"])


# --- broken copies ------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """Where the loader must say the problem is."""

    file: str
    line: Optional[int]
    entry: Optional[str]
    field: Optional[str]


def _line_number(text: str, needle: str, after: int = 0) -> int:
    """1-based number of the first line at or after line `after` that contains `needle`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= after and needle in line:
            return number
    raise AssertionError(f"{needle!r} not found")


def _edit_entry(folder: Path, name: str, entry: str, old: str, new: str) -> str:
    """Replace the first `old` inside the entry `- id: entry` of `name`; return the new text."""
    path = folder / name
    text = path.read_text(encoding="utf-8")
    start = text.index(f"- id: {entry}\n")
    position = text.index(old, start)
    text = text[:position] + new + text[position + len(old) :]
    path.write_text(text, encoding="utf-8")
    return text


def _entry_line(text: str, entry: str) -> int:
    return _line_number(text, f"- id: {entry}")


def missing_required_field(folder: Path) -> Expected:
    text = _edit_entry(folder, "services.yml", "passport_renewal", "    department: Immigration Office\n", "")
    return Expected("services.yml", _entry_line(text, "passport_renewal"), "passport_renewal", "department")


def fee_not_a_number(folder: Path) -> Expected:
    text = _edit_entry(folder, "services.yml", "passport_renewal", "fee: 100", 'fee: "abc"')
    return Expected("services.yml", _line_number(text, 'fee: "abc"'), "passport_renewal", "fee")


def windows_zero(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "north_centre", "windows: 4", "windows: 0")
    line = _line_number(text, "windows: 0", _entry_line(text, "north_centre"))
    return Expected("offices.yml", line, "north_centre", "windows")


def one_visit_yes(folder: Path) -> Expected:
    text = _edit_entry(folder, "services.yml", "child_benefit", "one_visit: true", 'one_visit: "yes"')
    return Expected("services.yml", _line_number(text, 'one_visit: "yes"'), "child_benefit", "one_visit")


def _hours_line(text: str, entry: str) -> int:
    return _line_number(text, "hours:", _entry_line(text, entry))


def hours_malformed(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "north_centre", 'mon: "08:30-17:00"', 'mon: "8-5"')
    return Expected("offices.yml", _hours_line(text, "north_centre"), "north_centre", "hours")


def hours_close_before_open(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "north_centre", 'tue: "08:30-17:00"', 'tue: "17:00-08:30"')
    return Expected("offices.yml", _hours_line(text, "north_centre"), "north_centre", "hours")


def hours_missing_day(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "north_centre", "      sun: closed\n", "")
    return Expected("offices.yml", _hours_line(text, "north_centre"), "north_centre", "hours")


def unknown_office_in_service(folder: Path) -> Expected:
    text = _edit_entry(
        folder, "services.yml", "birth_registration", "[civil_registry, central_centre", "[civil_registry, centrl_centre"
    )
    line = _line_number(text, "centrl_centre")
    return Expected("services.yml", line, "birth_registration", "offices")


def unknown_service_in_step(folder: Path) -> Expected:
    text = _edit_entry(folder, "life_events.yml", "school", "service: school_meal_subsidy", "service: school_dinners")
    return Expected("life_events.yml", _line_number(text, "service: school_dinners"), "school", "steps")


def unknown_district(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "north_centre", "district: north\n", "district: nort\n")
    line = _line_number(text, "district: nort", _entry_line(text, "north_centre"))
    return Expected("offices.yml", line, "north_centre", "district")


def duplicate_id(folder: Path) -> Expected:
    path = folder / "services.yml"
    text = path.read_text(encoding="utf-8").replace("- id: child_benefit\n", "- id: birth_registration\n")
    path.write_text(text, encoding="utf-8")
    second = _line_number(text, "- id: birth_registration", _entry_line(text, "birth_registration") + 1)
    return Expected("services.yml", second, "birth_registration", "id")


def unknown_field(folder: Path) -> Expected:
    text = _edit_entry(folder, "services.yml", "passport_renewal", "processing_days:", "procesing_days:")
    return Expected("services.yml", _line_number(text, "procesing_days:"), "passport_renewal", "procesing_days")


def alias_of_two_kinds(folder: Path) -> Expected:
    path = folder / "city.yml"
    text = path.read_text(encoding="utf-8").replace("aliases: [riverside,", "aliases: [pothole, riverside,")
    path.write_text(text, encoding="utf-8")
    return Expected("city.yml", _line_number(text, "[pothole, riverside,"), "riverside", "aliases")


def _stops_line(text: str) -> int:
    return _line_number(text, "stops:", _entry_line(text, "mobile_van"))


def van_without_a_stop_on_an_open_day(folder: Path) -> Expected:
    path = folder / "offices.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        "".join(line for line in text.splitlines(keepends=True) if not line.startswith("      wed: {place:")), encoding="utf-8"
    )
    return Expected("offices.yml", _stops_line(path.read_text(encoding="utf-8")), "mobile_van", "stops")


def van_stop_on_a_closed_day(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "mobile_van", 'mon: "09:00-12:00"', "mon: closed")
    return Expected("offices.yml", _stops_line(text), "mobile_van", "stops")


def van_stop_without_a_place(folder: Path) -> Expected:
    text = _edit_entry(folder, "offices.yml", "mobile_van", 'place: "Oakfield village green, Riverside"', 'place: ""')
    return Expected("offices.yml", _stops_line(text), "mobile_van", "stops")


def stops_on_a_fixed_office(folder: Path) -> Expected:
    text = _edit_entry(
        folder,
        "offices.yml",
        "north_centre",
        "    hours:\n",
        "    stops: {mon: {place: Hillcrest, location: {lat: 52.1, lon: 5.1}}}\n    hours:\n",
    )
    return Expected("offices.yml", _line_number(text, "stops:", _entry_line(text, "north_centre")), "north_centre", "stops")


def sympathy_empty(folder: Path) -> Expected:
    text = _edit_entry(folder, "life_events.yml", "death", "sympathy: I am very sorry for your loss.", 'sympathy: ""')
    return Expected("life_events.yml", _line_number(text, 'sympathy: ""'), "death", "sympathy")


def _broken_benefit(folder: Path, new: str) -> Expected:
    text = _edit_entry(folder, "services.yml", "child_benefit", "    benefit:\n      amount: 150\n", new)
    return Expected(
        "services.yml", _line_number(text, "benefit:", _entry_line(text, "child_benefit")), "child_benefit", "benefit"
    )


def benefit_paid_daily(folder: Path) -> Expected:
    return _broken_benefit(folder, "    benefit:\n      amount: 150\n      per: day\n")


def benefit_amount_zero(folder: Path) -> Expected:
    return _broken_benefit(folder, "    benefit:\n      amount: 0\n")


def benefit_without_basis(folder: Path) -> Expected:
    text = _edit_entry(
        folder, "services.yml", "child_benefit", "      basis: That is for each child", "      note: That is for each child"
    )
    return Expected(
        "services.yml", _line_number(text, "benefit:", _entry_line(text, "child_benefit")), "child_benefit", "benefit"
    )


def benefit_period_fortnight(folder: Path) -> Expected:
    text = _edit_entry(folder, "services.yml", "child_benefit", "      period: month", "      period: fortnight")
    return Expected(
        "services.yml", _line_number(text, "benefit:", _entry_line(text, "child_benefit")), "child_benefit", "benefit"
    )


BROKEN: Dict[str, Callable[[Path], Expected]] = {
    "benefit with an unknown field": benefit_paid_daily,
    "benefit amount 0": benefit_amount_zero,
    "benefit without basis": benefit_without_basis,
    "benefit paid each fortnight": benefit_period_fortnight,
    "empty sympathy": sympathy_empty,
    "van without a stop on an open day": van_without_a_stop_on_an_open_day,
    "van stop on a closed day": van_stop_on_a_closed_day,
    "van stop without a place": van_stop_without_a_place,
    "stops on a fixed office": stops_on_a_fixed_office,
    "missing required field": missing_required_field,
    "fee abc": fee_not_a_number,
    "windows 0": windows_zero,
    "one_visit yes": one_visit_yes,
    "hours 8-5": hours_malformed,
    "hours close before open": hours_close_before_open,
    "hours missing day": hours_missing_day,
    "unknown office in service": unknown_office_in_service,
    "unknown service in life event step": unknown_service_in_step,
    "unknown district": unknown_district,
    "duplicate id": duplicate_id,
    "unknown field": unknown_field,
    "alias used by two kinds": alias_of_two_kinds,
}


def _located(problems: List[str], expected: Expected, folder: Path) -> List[str]:
    return [
        p
        for p in problems
        if p.startswith(f"{folder / expected.file}:{expected.line}: ")
        and f"({expected.entry})" in p
        and f"field '{expected.field}'" in p
    ]


@pytest.mark.parametrize("break_it", BROKEN.values(), ids=list(BROKEN))
def test_broken_catalogue_names_file_line_entry_and_field(copy: Path, break_it: Callable[[Path], Expected]) -> None:
    expected = break_it(copy)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    assert _located(caught.value.problems, expected, copy), caught.value.problems
    assert f"{copy / expected.file}:{expected.line}" in str(caught.value)


def test_alias_clash_is_reported_at_both_entries(copy: Path) -> None:
    alias_of_two_kinds(copy)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    text = (copy / "report_categories.yml").read_text(encoding="utf-8")
    other = Expected("report_categories.yml", _line_number(text, "aliases: [pothole,"), "pothole", "aliases")
    assert _located(caught.value.problems, other, copy), caught.value.problems
    assert all("'pothole'" in p for p in caught.value.problems)


def test_alias_shared_by_two_offices_is_reported_at_both(copy: Path) -> None:
    """Only services may share an alias; two offices may not."""
    _edit_entry(copy, "offices.yml", "south_centre", "aliases: [", "aliases: [market square office, ")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    text = (copy / "offices.yml").read_text(encoding="utf-8")
    for entry in ("central_centre", "south_centre"):
        line = _line_number(text, "market square office", _entry_line(text, entry))
        expected = Expected("offices.yml", line, entry, "aliases")
        assert _located(caught.value.problems, expected, copy), caught.value.problems


def test_alias_shared_by_two_services_is_allowed(catalogue: Catalogue) -> None:
    assert sorted(catalogue.aliases()["service"]["passport"]) == ["passport_new", "passport_renewal"]


def test_invalid_yaml_names_file_and_line(copy: Path) -> None:
    path = copy / "services.yml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("    department: Civil Registry\n", "      department: Civil Registry\n", 1)
    path.write_text(text, encoding="utf-8")
    bad_line = _line_number(text, "      department: Civil Registry")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML")
    assert f"line {bad_line}," in problem


def test_missing_file_names_the_file(copy: Path) -> None:
    (copy / "life_events.yml").unlink()
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    assert caught.value.problems == [f"{copy / 'life_events.yml'}: file is missing"]


def test_every_problem_is_listed_not_only_the_first(copy: Path) -> None:
    fee_not_a_number(copy)
    windows_zero(copy)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(copy)
    assert len(caught.value.problems) == 2
    assert "field 'fee'" in caught.value.problems[1] and "field 'windows'" in caught.value.problems[0]


# --- command line ---------------------------------------------------------------------


def _check_catalogue(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ONEWINDOW_CATALOGUE": str(folder), "PYTHONPATH": str(settings.PROJECT_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "onewindow", "check-catalogue"],
        cwd=settings.PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_catalogue_command_fails_on_a_broken_copy(copy: Path) -> None:
    expected = fee_not_a_number(copy)
    result = _check_catalogue(copy)
    assert result.returncode == 1
    assert f"{copy / expected.file}:{expected.line}" in result.stderr


def test_check_catalogue_command_passes_on_the_real_catalogue(copy: Path, catalogue: Catalogue) -> None:
    result = _check_catalogue(copy)
    assert result.returncode == 0, result.stderr
    assert f"{len(catalogue.services)} services" in result.stdout


# --- NLU lookups ---------------------------------------------------------------------


def test_generated_lookups_file_is_up_to_date(catalogue: Catalogue) -> None:
    assert LOOKUPS.read_text(encoding="utf-8") == render_lookups(catalogue)


def _lookup(text: str, name: str) -> List[str]:
    document = YAML(typ="safe").load(text)
    [block] = [item for item in document["nlu"] if item.get("lookup") == name]
    return [line[2:] for line in block["examples"].splitlines()]


def test_lookup_lists_longer_phrase_before_its_prefix(catalogue: Catalogue) -> None:
    services = _lookup(render_lookups(catalogue), "service")
    assert services.index("passport renewal") < services.index("passport")
    assert services.index("id card renewal") < services.index("id card")


def test_lookup_contains_every_alias_and_name(catalogue: Catalogue) -> None:
    offices = _lookup(render_lookups(catalogue), "office")
    for office in catalogue.offices:
        assert office["name"].lower() in offices
        assert set(office["aliases"]) <= set(offices)


def test_synonym_maps_unambiguous_alias_but_not_shared_one(catalogue: Catalogue) -> None:
    document = YAML(typ="safe").load(render_lookups(catalogue))
    synonyms = {item["synonym"]: item["examples"] for item in document["nlu"] if "synonym" in item}
    assert "- renew my passport\n" in synonyms["passport_renewal"]
    assert "- passport\n" not in synonyms["passport_renewal"] + synonyms["passport_new"]


# --- seeding ----------------------------------------------------------------------------


def _snapshot(url: str) -> Dict[str, Dict[str, Any]]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            counts = {
                model.__tablename__: session.scalar(select(func.count()).select_from(model))
                for model in (
                    models.City,
                    models.District,
                    models.Office,
                    models.OpeningHours,
                    models.Service,
                    models.ServiceOffice,
                    models.LifeEvent,
                    models.LifeEventStep,
                    models.ReportCategory,
                    models.Alias,
                )
            }
            fees = dict(session.execute(select(models.Service.id, models.Service.fee_cents)).all())
            benefits = {
                row.id: tuple(row[1:])
                for row in session.execute(
                    select(
                        models.Service.id,
                        models.Service.benefit_cents,
                        models.Service.benefit_up_to,
                        models.Service.benefit_period,
                        models.Service.benefit_basis,
                    )
                )
            }
            return {"counts": counts, "fees": fees, "benefits": benefits}
    finally:
        engine.dispose()


def test_seeding_twice_changes_nothing(database_url: str, catalogue: Catalogue) -> None:
    seed(database_url)
    first = _snapshot(database_url)
    seed(database_url)
    assert _snapshot(database_url) == first
    assert first["counts"]["services"] == len(catalogue.services)
    assert first["fees"]["passport_renewal"] == 100 * next(s["fee"] for s in catalogue.services if s["id"] == "passport_renewal")
    for service in catalogue.services:
        benefit = service.get("benefit")
        expected = (
            (round(benefit["amount"] * 100), benefit.get("up_to", False), benefit["period"], benefit["basis"])
            if benefit
            else (None, None, None, None)
        )
        assert first["benefits"][service["id"]] == expected, service["id"]
    assert sum(1 for s in catalogue.services if s.get("benefit")) >= 10, "the benefits say what they pay"


def _remove_service(folder: Path, service_id: str) -> None:
    """Drop a service from services.yml and every life event step that uses it."""
    yaml = YAML(typ="rt")
    services_path, events_path = folder / "services.yml", folder / "life_events.yml"
    services = yaml.load(services_path.read_text(encoding="utf-8"))
    services["services"] = [s for s in services["services"] if s["id"] != service_id]
    with services_path.open("w", encoding="utf-8") as out:
        yaml.dump(services, out)
    events = yaml.load(events_path.read_text(encoding="utf-8"))
    for event in events["life_events"]:
        event["steps"] = [step for step in event["steps"] if step["service"] != service_id]
    with events_path.open("w", encoding="utf-8") as out:
        yaml.dump(events, out)


def test_removed_service_becomes_inactive_and_keeps_its_appointments(database_url: str, copy: Path) -> None:
    seed(database_url, folder=copy)
    engine = make_engine(database_url)
    try:
        backend = ServiceBackend(engine)
        start = backend.bookings.next_free("immigration_office", date.today() + timedelta(days=1))[0]
        booked = backend.bookings.book("passport_renewal", "immigration_office", start, "Ana Li", "0711 222 333", "rest")

        _remove_service(copy, "passport_renewal")
        seed(database_url, folder=copy)
        backend.catalogue.refresh()  # a running server does this when its copy expires

        assert backend.catalogue.service("passport_renewal") is None
        assert backend.catalogue.resolve("service", "renew my passport") == []
        assert backend.catalogue.service("passport_new") is not None
        with make_sessionmaker(engine)() as session:
            row = session.get(models.Service, "passport_renewal")
            assert row is not None and row.active is False
            appointment = session.scalars(
                select(models.Appointment).where(models.Appointment.reference == booked.reference)
            ).one()
            assert appointment.service_id == "passport_renewal" and appointment.status == "booked"
        assert expect.booking(backend, booked.reference).service_id == "passport_renewal"

        shutil.rmtree(copy)
        shutil.copytree(CATALOGUE, copy)
        seed(database_url, folder=copy)
        backend.catalogue.refresh()
        assert backend.catalogue.service("passport_renewal") is not None, "a service put back is active again"
    finally:
        engine.dispose()
