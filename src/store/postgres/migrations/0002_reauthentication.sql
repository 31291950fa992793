-- When the user last proved a password or code in a session after its
-- login (admin actions need one within the last 10 minutes).
ALTER TABLE sessions ADD COLUMN reauthenticated_at timestamptz;
