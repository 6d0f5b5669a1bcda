-- The daily digest looks at a mine's reports by the hour they arrived: the ones around its new
-- reports (to count similar reports within seven days) and the last eight weeks (the Monday chart).
-- Covering: both queries read only these columns (and the id), never the table.
CREATE INDEX reports_by_site_hour ON reports (site_id, created_hour, category);

-- Every run looks for digests still being delivered: a handful among all the delivered ones.
CREATE INDEX digests_sending ON digests (id) WHERE state = 'sending';
