-- Per stream: transcode an RTMP/RTSP source into a three-layer simulcast ladder (q, h, f) so
-- viewers on weak links can get a lower layer. 0 = off (the source is forwarded as one layer).
ALTER TABLE streams ADD COLUMN simulcast_ladder BIGINT NOT NULL DEFAULT 0;
