"""schemathesis hooks for tests/schemathesis.sh: rules the API enforces that JSON Schema cannot state
(a relation between two fields, or to the clock). Valid cases that break them are dropped or
mended; invalid cases are left alone, so every check still applies to everything that is sent.
"""

from datetime import datetime, timedelta, timezone

import schemathesis


PINS_PERSON_CANCEL_PIN = "2468"
PINS_STATE = {"set": False}


def positive(case):
    return case.meta is None or not case.meta.generation.mode.is_negative


def operation_id(case):
    return case.operation.definition.raw.get("operationId")


def repeats(values):
    values = [v for v in values if v is not None]
    return len(values) != len(set(values))


@schemathesis.hook
def filter_case(context, case):
    body = case.body
    if not positive(case) or not isinstance(body, dict):
        return True
    if operation_id(case) == "setPins":
        # The duress PIN must differ from the cancel PIN.
        return body.get("cancel_pin") != body.get("duress_pin")
    contacts = body.get("contacts")
    if operation_id(case) in ("register", "replaceContacts") and isinstance(contacts, list):
        # No phone or e-mail address twice (e-mail addresses compared trimmed and lower-cased).
        contacts = [c for c in contacts if isinstance(c, dict)]
        emails = [c.get("email") for c in contacts]
        emails = [e.strip().lower() if isinstance(e, str) else None for e in emails]
        return not repeats([c.get("phone") for c in contacts]) and not repeats(emails)
    return True


@schemathesis.hook
def map_case(context, case):
    if not positive(case):
        return case
    body = case.body
    if operation_id(case) == "startCheckIn" and isinstance(body, dict):
        # A deadline is 1 minute to 7 days from now; any other valid date-time is refused.
        deadline = datetime.now(timezone.utc) + timedelta(hours=1)
        body["deadline"] = deadline.isoformat(timespec="seconds").replace("+00:00", "Z")
    if operation_id(case) in ("cancelAlert", "confirmCheckIn") and isinstance(body, dict):
        # Whether a cancel takes a PIN depends on whether the person set PINs, and the alerting
        # person never does (tests/schemathesis.toml): a PIN is refused.
        body.pop("pin", None)
    if operation_id(case) == "replaceContacts" and isinstance(body, dict):
        body.pop("current_pin", None)
    if operation_id(case) in ("register", "replaceContacts") and isinstance(body, dict):
        # A phone must be a number in use in the US or Mexico, which no pattern can say: each
        # generated one becomes a distinct Chicago number.
        contacts = body.get("contacts")
        for index, contact in enumerate(contacts if isinstance(contacts, list) else []):
            if isinstance(contact, dict) and isinstance(contact.get("phone"), str):
                contact["phone"] = f"+1312555{index:04}"
    if operation_id(case) == "setPins" and isinstance(body, dict):
        # The first setting needs no current PIN; every later one needs the cancel PIN set
        # before, so the cancel PIN stays the same one throughout.
        body["cancel_pin"] = PINS_PERSON_CANCEL_PIN
        if body.get("duress_pin") == PINS_PERSON_CANCEL_PIN:
            body["duress_pin"] = "13579"
        if PINS_STATE["set"]:
            body["current_pin"] = PINS_PERSON_CANCEL_PIN
        else:
            body.pop("current_pin", None)
            PINS_STATE["set"] = True
    if operation_id(case) == "listConsulateAlerts" and isinstance(case.query, dict):
        # A cursor is only valid as a page's `next_cursor` returned it.
        case.query.pop("cursor", None)
    return case
