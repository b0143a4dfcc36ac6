-- Who manages a token: 'cli' (flywheel tokens create) or 'file'
-- (server.auth.tokens_file, a mounted Secret). File tokens are looked up by
-- the hash of their secret.
ALTER TABLE api_tokens ADD COLUMN source TEXT NOT NULL DEFAULT 'cli';
CREATE INDEX api_tokens_hash ON api_tokens (hash);
