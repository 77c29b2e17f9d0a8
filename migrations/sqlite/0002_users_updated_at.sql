-- Open connections learn of role and status changes by polling for recently updated users
-- (realtime/revocation.rs); this keeps that poll an index range scan.
CREATE INDEX users_updated_at ON users (updated_at);
