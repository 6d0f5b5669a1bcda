-- Announcements. Subscribers are users: their language, their mine if they chose one in /profile,
-- whether they want announcements, and whether Telegram still lets the bot reach them.
ALTER TABLE users ADD COLUMN subscribed INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN reachable INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN site_id INTEGER REFERENCES sites (id);
CREATE INDEX users_audience ON users (subscribed, reachable, site_id, language);

CREATE TABLE campaigns (
    id           INTEGER PRIMARY KEY,
    created_by   INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'draft'
                 CHECK (state IN ('draft', 'scheduled', 'sending', 'paused', 'done', 'cancelled')),
    audience     TEXT NOT NULL,          -- JSON: {"sites": [ids] or null, "languages": [codes] or null}
    contents     TEXT NOT NULL,          -- JSON: per language {text, entities, photo, button}, plus "fallback"
    ack_button   INTEGER NOT NULL DEFAULT 0,
    send_at      TEXT,                   -- UTC, "YYYY-MM-DDTHH:MM:SSZ"; null: as soon as confirmed
    quiet_hours  TEXT NOT NULL DEFAULT 'none' CHECK (quiet_hours IN ('none', 'silent', 'hold')),
    pause_reason TEXT,
    created_at   TEXT NOT NULL,
    total        INTEGER NOT NULL DEFAULT 0,
    delivered    INTEGER NOT NULL DEFAULT 0,
    blocked      INTEGER NOT NULL DEFAULT 0,
    failed       INTEGER NOT NULL DEFAULT 0,
    acknowledged INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX campaigns_by_state ON campaigns (state, send_at);

-- The durable outbox: one row per recipient, written in one transaction when the campaign falls due.
-- 'sending' marks the message in flight, so a crash repeats at most those; rows are deleted when the
-- campaign is finished (the totals stay on the campaign).
CREATE TABLE campaign_outbox (
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    chat_id     INTEGER NOT NULL,
    language    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sending', 'delivered', 'blocked', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, chat_id)
) WITHOUT ROWID;
CREATE INDEX campaign_outbox_by_state ON campaign_outbox (campaign_id, state);
