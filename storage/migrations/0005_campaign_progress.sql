-- The organizer's progress message, edited while a campaign goes out (it survives restarts).
ALTER TABLE campaigns ADD COLUMN progress_chat_id INTEGER;
ALTER TABLE campaigns ADD COLUMN progress_message_id INTEGER;
