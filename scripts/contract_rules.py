"""Schemathesis hooks for scripts/contract: the rules a schema cannot state.

The OpenAPI document states every rule JSON Schema can: lengths, patterns, ranges, either/or
fields. Some rules are beyond it: values compared with each other (a window's end after its
start), with the clock (a showtime in the future), or with stored records (an id that exists, a
cursor the server made). A request that breaks one is schema-valid, and the server refuses it
with 422 naming the rule.

Schemathesis counts such a 422 as "a schema-valid request rejected" unless the operation's
config allows 422 (its documented way, `st explain ST202`). Allowing it alone would let any
422 through, so this module also adds a check: on those operations, a 422 to a schema-valid
request must name one of the rules listed here for the operation, or the run fails.

    python contract_rules.py config   prints the schemathesis.toml that allows these 422s
"""

import re
import sys

LAYOUT = [
    r'^VALIDATION_FAILED: sections: section ".*" appears twice$',
    r'^VALIDATION_FAILED: sections: row \S+ of section ".*" appears twice: seats overlap$',
    r'^VALIDATION_FAILED: rows\.seats: seat \S+ of section ".*" appears twice: seats overlap$',
    r'^VALIDATION_FAILED: sections: section ".*" has no seats$',
    r"^VALIDATION_FAILED: sections: a venue has at most \d+ seats$",
    r'^VALIDATION_FAILED: generate\.rows: ".*" runs backwards or spans 1000 rows or more$',
    r'^VALIDATION_FAILED: generate\.(kinds\.)?seats: ".*" runs backwards$',
    r'^VALIDATION_FAILED: generate\.kinds: row \S+ is not generated in section ".*"$',
    r"^VALIDATION_FAILED: generate\.kinds: at most \d+ seats of other kinds$",
    r"^VALIDATION_FAILED: expected_capacity: the layout has \d+ seats, not \d+$",
]

# Operation -> the refusals (as "CODE: message") that only the server can decide.
BEYOND_SCHEMA = {
    "GET /api/shows": [
        r"^VALIDATION_FAILED: to: must be after from$",
        r"^VALIDATION_FAILED: cursor: ",
    ],
    "GET /api/events": [
        r"^VALIDATION_FAILED: to: must be after from$",
        r"^VALIDATION_FAILED: cursor: ",
    ],
    "GET /api/venues": [r"^VALIDATION_FAILED: cursor: "],
    "GET /api/stats/sales": [
        r"^VALIDATION_FAILED: from: must be before to$",
        r"^VALIDATION_FAILED: from: the window is at most \d+ days$",
    ],
    "GET /api/stats/top-shows": [
        r"^VALIDATION_FAILED: from: must be before to$",
        r"^VALIDATION_FAILED: from: the window is at most \d+ days$",
    ],
    "GET /api/stats/conversion": [
        r"^VALIDATION_FAILED: from: must be before to$",
        r"^VALIDATION_FAILED: from: the window is at most \d+ days$",
    ],
    # Whether a number exists in its country's numbering plan.
    "POST /api/auth/otp/request": [
        r"^VALIDATION_FAILED: phone: is (not a|not a valid) phone number$",
    ],
    "POST /api/auth/otp/verify": [
        r"^VALIDATION_FAILED: phone: is (not a|not a valid) phone number$",
    ],
    # The code is the one mailed, which the fuzzer cannot read.
    "POST /api/auth/email/verify": [r"^EMAIL_CODE_[A-Z_]+: "],
    "POST /api/bookings": [
        r"^UNKNOWN_SEATS: some seats do not exist in this showtime",
        r"^UNKNOWN_SECTION: this showtime has no such section$",
    ],
    "POST /api/admin/bookings": [
        r"^VALIDATION_FAILED: user_id: (no such user|this account is disabled)$",
        r"^VALIDATION_FAILED: showtime_id: no such showtime$",
        r"^VALIDATION_FAILED: seat_ids: some seats are not on sale for this showtime$",
    ],
    "PUT /api/admin/bookings/{id}/seats": [
        r"^VALIDATION_FAILED: seat_ids: name \d+ seats, as many as the booking has$",
    ],
    "POST /api/admin/bookings/{id}/refund": [
        r"^VALIDATION_FAILED: seat_ids: seat \S+ is not a live seat of this booking$",
    ],
    "POST /api/events": [
        r"^VALIDATION_FAILED: (show_id|venue_id): (no such (show|venue)|the (show|venue) is archived)$",
    ],
    "POST /api/shows": [r'^VALIDATION_FAILED: categories: no category with slug "'],
    "PATCH /api/shows/{id}": [r'^VALIDATION_FAILED: categories: no category with slug "'],
    "POST /api/showtimes": [
        r"^VALIDATION_FAILED: event_id: (no such event|the event is archived)$",
        r"^VALIDATION_FAILED: starts_at: must be in the future$",
        r"^VALIDATION_FAILED: ends_at: must be after starts_at$",
        r"^VALIDATION_FAILED: sale_ends_at: (must be after sale_starts_at|the sale must close by the time the show ends)$",
        r"^VALIDATION_FAILED: starts_at: a showtime cannot start before its sale opens$",
        r"^VALIDATION_FAILED: price_tiers\.section_id: \S+ is not a section of this venue$",
        r"^VALIDATION_FAILED: price_tiers: section .* is priced twice$",
        r"^VALIDATION_FAILED: price_tiers\.allocated_capacity: section .* has \d+ seats; allocate between 0 and \d+$",
    ],
    "PATCH /api/showtimes/{id}": [
        r"^VALIDATION_FAILED: ends_at: must be after starts_at$",
        r"^VALIDATION_FAILED: sale_ends_at: (must be after sale_starts_at|the sale must close by the time the show ends)$",
        r"^VALIDATION_FAILED: starts_at: a showtime cannot start before its sale opens$",
    ],
    "PUT /api/showtimes/{id}/price-tiers": [
        r"^VALIDATION_FAILED: price_tiers\.section_id: \S+ is not a section of this venue$",
        r"^VALIDATION_FAILED: price_tiers: section .* is priced twice$",
        r"^VALIDATION_FAILED: price_tiers\.allocated_capacity: section .* has \d+ seats; allocate between 0 and \d+$",
    ],
    "POST /api/showtimes/{id}/publish": [
        r"^VALIDATION_FAILED: sale_ends_at: the sale window is over; move it before publishing$",
        r"^VALIDATION_FAILED: price_tiers: price at least one section with seats before publishing$",
    ],
    # A layout's ranges in order, its names and rows once each, its seats counted.
    "POST /api/venues": LAYOUT,
    "PUT /api/venues/{id}/layout": LAYOUT,
}


def refusal(response):
    """The 422's "CODE: message", or None when its body is not the error shape."""
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return None


def names_a_rule(operation, text):
    return any(re.search(rule, text) for rule in BEYOND_SCHEMA.get(operation, []))


def config():
    """The schemathesis.toml that lets these operations answer a valid request with 422."""
    lines = []
    for operation in BEYOND_SCHEMA:
        lines += [
            "[[operations]]",
            f'include-name = "{operation}"',
            'checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]',
            "",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["config"]:
        print(config())
        sys.exit(0)
    sys.exit(__doc__)

import schemathesis  # noqa: E402  (imported as hooks only; `config` needs no schemathesis)


@schemathesis.check
def refused_only_for_rules_beyond_the_schema(ctx, response, case):
    """A 422 to a schema-valid request names a rule listed in BEYOND_SCHEMA."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    operation = f"{case.method.upper()} {case.path}"
    if operation not in BEYOND_SCHEMA:
        return None  # schemathesis's own check refuses every 422 here
    text = refusal(response)
    if text is None or not names_a_rule(operation, text):
        raise AssertionError(
            f"a schema-valid request was refused for a rule the schema could state: {text}"
        )
    return None
