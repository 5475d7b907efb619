-- /search on PostgreSQL: a GIN index on each message's words ('simple' configuration: no
-- stemming, no stop words, as SQLite's unicode61 tokenizer), kept by PostgreSQL as rows
-- come (GIN's pending list keeps the insert cheap).
CREATE INDEX messages_words ON messages USING gin (to_tsvector('simple', body));
