-- Committees, organizers and the work on cases. Committee members and organizers are not
-- anonymous: what they do to a case is recorded with their name. Reporters stay anonymous.

CREATE TABLE roles (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('committee', 'organizer')),
    site_id      INTEGER REFERENCES sites (id),
    display_name TEXT NOT NULL,
    granted_at   TEXT NOT NULL,
    CHECK ((role = 'committee') = (site_id IS NOT NULL))
);
CREATE UNIQUE INDEX roles_unique ON roles (user_id, role, IFNULL(site_id, 0));
CREATE INDEX roles_by_site ON roles (site_id) WHERE site_id IS NOT NULL;

-- One-time invitation codes; only a hash is kept, and a used or expired code is deleted.
CREATE TABLE invites (
    code_hash  TEXT PRIMARY KEY,
    role       TEXT NOT NULL CHECK (role IN ('committee', 'organizer', 'group')),
    site_id    INTEGER REFERENCES sites (id),
    created_by INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

-- Telegram groups where a committee works; alerts and digests go there too.
CREATE TABLE committee_chats (
    chat_id  INTEGER PRIMARY KEY,
    site_id  INTEGER NOT NULL REFERENCES sites (id),
    title    TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT 'ru' CHECK (language IN ('kk', 'ru', 'en')),
    bound_by INTEGER NOT NULL
);
CREATE INDEX committee_chats_by_site ON committee_chats (site_id);

-- The case timeline: status changes by members (exact time, member named) and messages from
-- the reporter (only the hour, like the report itself; never who).
ALTER TABLE report_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'status'
    CHECK (kind IN ('status', 'note', 'reporter_message'));
ALTER TABLE report_events ADD COLUMN actor_user_id INTEGER;
ALTER TABLE report_events ADD COLUMN actor_name TEXT;
ALTER TABLE report_events ADD COLUMN at TEXT;

-- Danger alerts that must reach the committee; a row stays until acknowledged, so a crash
-- between saving a report and alerting cannot lose the alert. No times: they would date the report.
CREATE TABLE danger_alerts (
    report_id INTEGER PRIMARY KEY REFERENCES reports (id) ON DELETE CASCADE,
    state     TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'escalated'))
);

-- Daily digests: each committee's watermark advances only once its digest is delivered.
CREATE TABLE digest_watermarks (
    site_id        INTEGER PRIMARY KEY REFERENCES sites (id),
    last_report_id INTEGER NOT NULL DEFAULT 0,
    last_digest_on TEXT
);

-- A digest is frozen when built (the range of reports and its message parts), then delivered
-- part by part to each recipient; each delivered part is recorded, so a crash resumes exactly.
CREATE TABLE digests (
    id             INTEGER PRIMARY KEY,
    site_id        INTEGER NOT NULL REFERENCES sites (id),
    digest_on      TEXT NOT NULL,
    from_report_id INTEGER NOT NULL,
    to_report_id   INTEGER NOT NULL,
    language       TEXT NOT NULL,
    parts          TEXT NOT NULL,
    chart          BLOB,
    state          TEXT NOT NULL DEFAULT 'sending' CHECK (state IN ('sending', 'delivered')),
    UNIQUE (site_id, digest_on, language)
);

CREATE TABLE digest_deliveries (
    digest_id  INTEGER NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    chat_id    INTEGER NOT NULL,
    part       INTEGER NOT NULL,
    PRIMARY KEY (digest_id, chat_id, part)
) WITHOUT ROWID;

CREATE INDEX reports_by_site_category ON reports (site_id, category, id);
CREATE INDEX reports_by_status ON reports (site_id, status, id);
