-- Editing the catalogue: search, the showtime lifecycle in the database, and the indexes
-- discovery reads by.

-- Free-text search over what a buyer types: title, artist, description. 'simple' keeps names
-- and Hindi words as they are instead of stemming them as English.
ALTER TABLE shows ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('simple', coalesce(title, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(artist, '')), 'A')
    || setweight(to_tsvector('simple', coalesce(description, '')), 'B')
) STORED;
CREATE INDEX shows_search ON shows USING gin (search);
CREATE INDEX shows_by_artist ON shows (lower(artist)) WHERE archived_at IS NULL;
CREATE INDEX shows_by_title ON shows (title, id) WHERE archived_at IS NULL;
CREATE INDEX venues_by_name ON venues (name, id) WHERE archived_at IS NULL;
CREATE INDEX price_tiers_by_section ON price_tiers (section_id);

-- Showtime lifecycle: DRAFT -> ON_SALE (publishing creates the inventory) -> SOLD_OUT <-> ON_SALE,
-- and any live state -> CANCELED or COMPLETED. Nothing leaves CANCELED or COMPLETED.
CREATE FUNCTION showtime_transition_allowed(from_status showtime_status, to_status showtime_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('DRAFT', 'ON_SALE'),
        ('DRAFT', 'CANCELED'),
        ('ON_SALE', 'SOLD_OUT'),
        ('SOLD_OUT', 'ON_SALE'),
        ('ON_SALE', 'CANCELED'),
        ('SOLD_OUT', 'CANCELED'),
        ('ON_SALE', 'COMPLETED'),
        ('SOLD_OUT', 'COMPLETED')
    )
$$;

CREATE FUNCTION showtimes_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT showtime_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'showtime % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'showtime_status_transition';
    END IF;
    IF OLD.status = 'DRAFT' AND NEW.status = 'ON_SALE' AND NEW.published_at IS NULL THEN
        NEW.published_at := now();
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER showtimes_guard_transition
    BEFORE UPDATE OF status ON showtimes
    FOR EACH ROW EXECUTE FUNCTION showtimes_guard_transition();
