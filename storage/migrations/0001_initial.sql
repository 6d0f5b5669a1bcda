-- The only table that holds Telegram user ids. Nothing in any other table refers to it.
CREATE TABLE users (
    user_id  INTEGER PRIMARY KEY,
    language TEXT NOT NULL CHECK (language IN ('kk', 'ru', 'en'))
);

CREATE TABLE regions (
    code     TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name_kk  TEXT NOT NULL,
    name_ru  TEXT NOT NULL,
    name_en  TEXT NOT NULL
);

CREATE TABLE sites (
    id          INTEGER PRIMARY KEY,
    code        TEXT NOT NULL UNIQUE,
    region_code TEXT NOT NULL REFERENCES regions (code),
    position    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    operator    TEXT,
    name_kk     TEXT NOT NULL,
    name_ru     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    archived    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sites_by_region ON sites (region_code, position);

-- A hazard report. Deliberately without any column that could identify the sender:
-- no user or chat id, no username or name, no message ids, and only the hour it arrived.
CREATE TABLE reports (
    id           INTEGER PRIMARY KEY,
    case_code    TEXT NOT NULL UNIQUE,
    receipt_hash TEXT NOT NULL,
    site_id      INTEGER NOT NULL REFERENCES sites (id),
    category     TEXT NOT NULL,
    severity     TEXT NOT NULL CHECK (severity IN ('danger', 'serious', 'attention')),
    location     TEXT,
    description  TEXT NOT NULL,
    language     TEXT NOT NULL CHECK (language IN ('kk', 'ru', 'en')),
    status       TEXT NOT NULL DEFAULT 'received',
    created_hour TEXT NOT NULL
);
CREATE INDEX reports_by_site ON reports (site_id, id);

CREATE TABLE report_photos (
    report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    file_id   TEXT NOT NULL,
    PRIMARY KEY (report_id, position)
) WITHOUT ROWID;

-- The case timeline the reporter sees with /status.
CREATE TABLE report_events (
    id        INTEGER PRIMARY KEY,
    report_id INTEGER NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    status    TEXT NOT NULL,
    at_hour   TEXT NOT NULL,
    note      TEXT
);
CREATE INDEX report_events_by_report ON report_events (report_id, id);

-- aiogram FSM: conversation state per user while a flow is in progress. Rows are deleted
-- when a flow ends (secure_delete zeroes them), so drafts do not outlive their conversation.
CREATE TABLE fsm_states (
    key        TEXT PRIMARY KEY,
    state      TEXT,
    data       TEXT NOT NULL DEFAULT '{}',
    updated_at INTEGER NOT NULL
);
CREATE INDEX fsm_states_by_age ON fsm_states (updated_at);
