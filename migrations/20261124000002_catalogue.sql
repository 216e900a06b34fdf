-- Catalogue: venues and their seat layouts; shows -> events -> showtimes; categories and prices.

CREATE TYPE seat_kind AS ENUM ('STANDARD', 'ACCESSIBLE', 'AISLE', 'COMPANION', 'RESTRICTED_VIEW');
CREATE TYPE showtime_status AS ENUM ('DRAFT', 'ON_SALE', 'SOLD_OUT', 'CANCELED', 'COMPLETED');

CREATE TABLE venues (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address      TEXT NOT NULL DEFAULT '',
    city         TEXT NOT NULL CHECK (length(city) BETWEEN 1 AND 100),
    latitude     DOUBLE PRECISION CHECK (latitude BETWEEN -90 AND 90),
    longitude    DOUBLE PRECISION CHECK (longitude BETWEEN -180 AND 180),
    -- Derived from the layout; kept here so listings need not count seats.
    capacity     INTEGER NOT NULL DEFAULT 0 CHECK (capacity >= 0),
    -- Age limit, bag policy, free-form rules: read whole by the venue page.
    rules        JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    archived_at  TIMESTAMPTZ
);
CREATE INDEX venues_by_city ON venues (lower(city)) WHERE archived_at IS NULL;

CREATE TABLE seat_sections (
    id          UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id    UUID NOT NULL REFERENCES venues (id),
    name        TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- Lower is closer to the stage: best-available looks here first.
    sort_order  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (venue_id, name),
    -- Lets child tables pin a section to its venue with a composite foreign key.
    UNIQUE (id, venue_id)
);

CREATE TABLE seats (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    venue_id     UUID NOT NULL,
    section_id   UUID NOT NULL,
    row_label    TEXT NOT NULL CHECK (length(row_label) BETWEEN 1 AND 8),
    -- Rows closest to the stage rank lowest.
    row_rank     INTEGER NOT NULL CHECK (row_rank >= 0),
    seat_number  INTEGER NOT NULL CHECK (seat_number > 0),
    kind         seat_kind NOT NULL DEFAULT 'STANDARD',
    FOREIGN KEY (section_id, venue_id) REFERENCES seat_sections (id, venue_id),
    CONSTRAINT seats_no_overlap UNIQUE (section_id, row_label, seat_number),
    UNIQUE (id, section_id)
);
CREATE INDEX seats_by_venue ON seats (venue_id);

CREATE TABLE categories (
    id    UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    name  TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    slug  TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$')
);

CREATE TABLE shows (
    id                UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    title             TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description       TEXT NOT NULL DEFAULT '',
    artist            TEXT NOT NULL DEFAULT '',
    language          TEXT NOT NULL DEFAULT 'en',
    duration_minutes  INTEGER CHECK (duration_minutes > 0),
    age_rating        TEXT,
    -- Image URLs and promotional copy: displayed, never queried into.
    media             JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    archived_at       TIMESTAMPTZ
);

CREATE TABLE show_categories (
    show_id      UUID NOT NULL REFERENCES shows (id) ON DELETE CASCADE,
    category_id  UUID NOT NULL REFERENCES categories (id),
    PRIMARY KEY (show_id, category_id)
);
CREATE INDEX show_categories_by_category ON show_categories (category_id);

-- A stop of a show's tour at one venue.
CREATE TABLE events (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    show_id      UUID NOT NULL REFERENCES shows (id),
    venue_id     UUID NOT NULL REFERENCES venues (id),
    title        TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    archived_at  TIMESTAMPTZ
);
CREATE INDEX events_by_show ON events (show_id);
CREATE INDEX events_by_venue ON events (venue_id);

CREATE TABLE showtimes (
    id                     UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    event_id               UUID NOT NULL REFERENCES events (id),
    starts_at              TIMESTAMPTZ NOT NULL,
    ends_at                TIMESTAMPTZ,
    sale_starts_at         TIMESTAMPTZ NOT NULL,
    sale_ends_at           TIMESTAMPTZ NOT NULL,
    status                 showtime_status NOT NULL DEFAULT 'DRAFT',
    -- Cap on seats one buyer may hold or own for this showtime across live bookings.
    max_seats_per_user     INTEGER NOT NULL DEFAULT 10 CHECK (max_seats_per_user > 0),
    published_at           TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT showtimes_sale_window CHECK (sale_starts_at < sale_ends_at),
    CONSTRAINT showtimes_sale_opens_before_start CHECK (sale_starts_at <= starts_at),
    CONSTRAINT showtimes_ends_after_start CHECK (ends_at IS NULL OR ends_at > starts_at)
);
CREATE INDEX showtimes_by_event ON showtimes (event_id, starts_at);
CREATE INDEX showtimes_upcoming ON showtimes (starts_at) WHERE status IN ('ON_SALE', 'SOLD_OUT');

-- The price of one section at one showtime, with the seats allocated to it.
CREATE TABLE price_tiers (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    showtime_id         UUID NOT NULL REFERENCES showtimes (id) ON DELETE CASCADE,
    section_id          UUID NOT NULL REFERENCES seat_sections (id),
    name                TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    price_paise         BIGINT NOT NULL CHECK (price_paise >= 0),
    currency            CHAR(3) NOT NULL DEFAULT 'INR' CHECK (currency ~ '^[A-Z]{3}$'),
    allocated_capacity  INTEGER NOT NULL CHECK (allocated_capacity >= 0),
    UNIQUE (showtime_id, section_id),
    UNIQUE (id, showtime_id)
);
