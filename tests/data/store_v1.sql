-- A store written by monitor 0.1 (schema 1, plain sqlite3), dumped with iterdump().
BEGIN TRANSACTION;
CREATE TABLE alert (
    id          INTEGER PRIMARY KEY,
    watch_id    TEXT NOT NULL REFERENCES watch(id),
    version_id  INTEGER REFERENCES version(id),
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    payload     TEXT NOT NULL  -- JSON, the message as channels render it
);
INSERT INTO "alert" VALUES(1,'mfa-en',2,'edited','2024-05-01T10:30:00.000Z','{"kind": "edited", "watch": "mfa-en"}');
CREATE TABLE blob (
    sha256       TEXT PRIMARY KEY,
    size         INTEGER NOT NULL,
    stored_size  INTEGER NOT NULL,
    media_type   TEXT
);
INSERT INTO "blob" VALUES('f631969c6a3d084ba71ee8156b21f3bc372c4e7a5868cde4fbbdd497d91deed4',23,32,'application/json');
INSERT INTO "blob" VALUES('18c537b9586309588373f024aff174b462a01a13c9bd6948cf6986cc30531a70',16,25,NULL);
INSERT INTO "blob" VALUES('3529d0a41555dcce5409451ca186444db8e972ff8d5867546e0e7928f37408f5',13,22,'application/json');
INSERT INTO "blob" VALUES('aa92fdc104c435a38df1faab0acf727b8b01c3bdaf93d1c91fb3cd712c34df46',23,32,'application/json');
INSERT INTO "blob" VALUES('a1a06dd13348c8b021ec36ab4c9cc7ec3bb9dfc979e57017429ee59ea908a277',13,22,'application/json');
CREATE TABLE check_run (
    id           INTEGER PRIMARY KEY,
    watch_id     TEXT NOT NULL REFERENCES watch(id),
    at           TEXT NOT NULL,
    ms           INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('changed','unchanged','problem')),
    status       INTEGER,
    detail       TEXT
);
INSERT INTO "check_run" VALUES(1,'mfa-en','2024-05-01T10:00:00.000Z',120,'changed',200,NULL);
INSERT INTO "check_run" VALUES(2,'mfa-en','2024-05-01T10:15:00.000Z',80,'unchanged',200,NULL);
INSERT INTO "check_run" VALUES(3,'mfa-en','2024-05-01T10:30:00.000Z',90,'changed',200,NULL);
CREATE TABLE delivery (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alert(id),
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    UNIQUE (alert_id, channel)
);
INSERT INTO "delivery" VALUES(1,1,'console','pending',0,'2024-05-01T10:30:00.000Z',NULL,NULL);
CREATE TABLE document (
    id          INTEGER PRIMARY KEY,
    watch_id    TEXT NOT NULL REFERENCES watch(id),
    key         TEXT NOT NULL,
    url         TEXT NOT NULL,
    language    TEXT,
    title       TEXT NOT NULL,
    published   TEXT,
    first_seen  TEXT NOT NULL,
    removed_at  TEXT,
    UNIQUE (watch_id, key)
);
INSERT INTO "document" VALUES(1,'mfa-en','en/1','https://www.gov.kz/news/1','en','Statement A','2024-05-01','2024-05-01T10:00:00.000Z',NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','1');
CREATE TABLE response (
    id              INTEGER PRIMARY KEY,
    watch_id        TEXT NOT NULL REFERENCES watch(id),
    requested_at    TEXT NOT NULL,
    method          TEXT NOT NULL,
    url             TEXT NOT NULL,
    final_url       TEXT NOT NULL,
    status          INTEGER,
    http_version    TEXT,
    request_headers TEXT NOT NULL,  -- JSON object
    request_body    TEXT REFERENCES blob(sha256),
    headers         TEXT NOT NULL,  -- JSON list of [name, value] as received
    redirects       TEXT NOT NULL,  -- JSON list of [status, url]
    server_date     TEXT,
    body_sha256     TEXT NOT NULL REFERENCES blob(sha256),
    body_size       INTEGER NOT NULL
);
INSERT INTO "response" VALUES(1,'mfa-en','2024-05-01T10:00:00.000Z','POST','https://www.gov.kz/graphql','https://www.gov.kz/graphql',200,'HTTP/1.1','{"Content-Type": "application/json"}','18c537b9586309588373f024aff174b462a01a13c9bd6948cf6986cc30531a70','[["Date", "Wed, 01 May 2024 10:00:00 GMT"], ["Content-Type", "application/json"]]','[]','Wed, 01 May 2024 10:00:00 GMT','f631969c6a3d084ba71ee8156b21f3bc372c4e7a5868cde4fbbdd497d91deed4',23);
INSERT INTO "response" VALUES(2,'mfa-en','2024-05-01T10:30:00.000Z','GET','https://www.gov.kz/api/news','https://www.gov.kz/api/news?x=1',200,'HTTP/1.1','{}',NULL,'[["Date", "Wed, 01 May 2024 10:30:00 GMT"]]','[[301, "https://www.gov.kz/api/news"]]','Wed, 01 May 2024 10:30:00 GMT','aa92fdc104c435a38df1faab0acf727b8b01c3bdaf93d1c91fb3cd712c34df46',23);
CREATE TABLE version (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES document(id),
    seq          INTEGER NOT NULL,
    observed_at  TEXT NOT NULL,
    kind         TEXT NOT NULL
                 CHECK (kind IN ('baseline','published','edited','removed','restored')),
    response_id  INTEGER REFERENCES response(id),
    text_sha256  TEXT REFERENCES blob(sha256),
    score        REAL NOT NULL DEFAULT 0,
    summary      TEXT NOT NULL DEFAULT '',
    UNIQUE (document_id, seq)
);
INSERT INTO "version" VALUES(1,1,1,'2024-05-01T10:00:00.000Z','baseline',1,'3529d0a41555dcce5409451ca186444db8e972ff8d5867546e0e7928f37408f5',0.0,'');
INSERT INTO "version" VALUES(2,1,2,'2024-05-01T10:30:00.000Z','edited',2,'a1a06dd13348c8b021ec36ab4c9cc7ec3bb9dfc979e57017429ee59ea908a277',0.5,'A -> B');
CREATE TABLE watch (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    profile     TEXT NOT NULL,
    first_seen  TEXT NOT NULL
);
INSERT INTO "watch" VALUES('mfa-en','https://www.gov.kz/memleket/entities/mfa/press/news?lang=en','govkz','2026-11-25T17:16:49.767Z');
CREATE TABLE watch_state (
    watch_id             TEXT PRIMARY KEY REFERENCES watch(id),
    last_check_at        TEXT,
    last_ok_at           TEXT,
    last_change_at       TEXT,
    failing_since        TEXT,
    failure_reason       TEXT,
    failure_alerted      INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    validators           TEXT NOT NULL DEFAULT '{}',  -- JSON {url: [etag, last_modified]}
    since_full           INTEGER NOT NULL DEFAULT 0   -- conditional checks since a full fetch
);
INSERT INTO "watch_state" VALUES('mfa-en','2024-05-01T10:00:00.000Z',NULL,NULL,NULL,NULL,0,0,'{}',0);
CREATE INDEX check_run_watch ON check_run (watch_id, id);
CREATE INDEX delivery_due ON delivery (status, next_attempt_at);
COMMIT;
