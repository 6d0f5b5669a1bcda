-- Psychosocial surveys. Answers are stored with their group only (mine, underground or surface).
-- Who has already answered is kept as a keyed hash under a per-survey secret, only while the survey
-- is open: closing deletes the secret and every hash, after which nothing links answers to people.
CREATE TABLE surveys (
    id          INTEGER PRIMARY KEY,
    instrument  TEXT NOT NULL,
    created_by  INTEGER NOT NULL,       -- the organizer or committee member who launched it
    audience    TEXT NOT NULL,          -- JSON, as for campaigns: {"sites": [ids] or null, "languages": null}
    opens_at    TEXT NOT NULL,          -- UTC
    closes_at   TEXT NOT NULL,          -- UTC
    state       TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed')),
    secret      BLOB,                   -- NULL once closed
    campaign_id INTEGER REFERENCES campaigns (id),  -- the invitation
    created_at  TEXT NOT NULL
);
CREATE INDEX surveys_by_state ON surveys (state, closes_at);

CREATE TABLE survey_takers (
    survey_id INTEGER NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    taker     BLOB NOT NULL,            -- HMAC-SHA256(secret, user id)
    PRIMARY KEY (survey_id, taker)
) WITHOUT ROWID;

-- A random key and no time: neither the order of rows nor a timestamp tells who answered when.
CREATE TABLE survey_responses (
    survey_id INTEGER NOT NULL REFERENCES surveys (id) ON DELETE CASCADE,
    id        BLOB NOT NULL,
    site_id   INTEGER NOT NULL REFERENCES sites (id),
    work_area TEXT NOT NULL CHECK (work_area IN ('underground', 'surface')),
    answers   TEXT NOT NULL,            -- JSON: item id -> option id, or null when skipped
    PRIMARY KEY (survey_id, id)
) WITHOUT ROWID;
