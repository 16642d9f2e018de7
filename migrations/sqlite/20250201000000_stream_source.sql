-- A stream may pull its media from an RTSP source instead of waiting for a publisher.
-- Both columns are NULL for streams without one; source_transport is 'tcp' or 'udp'.
ALTER TABLE streams ADD COLUMN source_url TEXT;
ALTER TABLE streams ADD COLUMN source_transport TEXT CHECK (source_transport IN ('tcp', 'udp'));
