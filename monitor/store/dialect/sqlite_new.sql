CREATE TABLE watch (
	id TEXT NOT NULL, 
	url TEXT NOT NULL, 
	profile TEXT NOT NULL, 
	first_seen TEXT NOT NULL, 
	chain_head TEXT, 
	PRIMARY KEY (id)
);

CREATE TABLE blob (
	sha256 TEXT NOT NULL, 
	size BIGINT NOT NULL, 
	stored_size BIGINT NOT NULL, 
	media_type TEXT, 
	PRIMARY KEY (sha256)
);

CREATE TABLE tls_chain (
	sha256 TEXT NOT NULL, 
	pem TEXT NOT NULL, 
	certificates TEXT NOT NULL, 
	first_seen TEXT NOT NULL, 
	PRIMARY KEY (sha256)
);

CREATE TABLE timestamp_batch (
	id INTEGER NOT NULL, 
	created_at TEXT NOT NULL, 
	manifest TEXT NOT NULL, 
	digest TEXT NOT NULL, 
	tsa_url TEXT NOT NULL, 
	token BLOB NOT NULL, 
	gen_time TEXT NOT NULL, 
	serial TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE meta (
	"key" TEXT NOT NULL, 
	value TEXT NOT NULL, 
	PRIMARY KEY ("key")
);

CREATE TABLE app_user (
	username TEXT NOT NULL, 
	password_hash TEXT NOT NULL, 
	role TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	PRIMARY KEY (username), 
	CONSTRAINT app_user_role CHECK (role IN ('viewer','editor','admin'))
);

CREATE TABLE web_session (
	id TEXT NOT NULL, 
	username TEXT NOT NULL, 
	fingerprint TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	expires_at TEXT NOT NULL, 
	client TEXT, 
	PRIMARY KEY (id)
);

CREATE INDEX web_session_user ON web_session (username);

CREATE TABLE api_token (
	name TEXT NOT NULL, 
	token_sha256 TEXT NOT NULL, 
	role TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	created_by TEXT NOT NULL, 
	last_used_at TEXT, 
	revoked_at TEXT, 
	PRIMARY KEY (name), 
	UNIQUE (token_sha256)
);

CREATE TABLE user_visit (
	username TEXT NOT NULL, 
	seen_at TEXT NOT NULL, 
	previous_at TEXT, 
	PRIMARY KEY (username)
);

CREATE TABLE ui_watch (
	id TEXT NOT NULL, 
	config TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	updated_by TEXT NOT NULL, 
	PRIMARY KEY (id)
);

CREATE TABLE furniture (
	id INTEGER NOT NULL, 
	scope TEXT NOT NULL, 
	scope_id TEXT NOT NULL, 
	kind TEXT NOT NULL, 
	fingerprint TEXT NOT NULL, 
	pattern TEXT NOT NULL, 
	example TEXT NOT NULL, 
	reason TEXT NOT NULL, 
	learned_at TEXT NOT NULL, 
	seen_at TEXT NOT NULL, 
	forgotten_at TEXT, 
	forgotten_by TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT furniture_scope CHECK (scope IN ('watch','host')), 
	CONSTRAINT furniture_kind CHECK (kind IN ('slot','shape','template')), 
	UNIQUE (scope, scope_id, kind, fingerprint)
);

CREATE TABLE learning_pair (
	old_sha256 TEXT NOT NULL, 
	new_sha256 TEXT NOT NULL, 
	changes TEXT NOT NULL, 
	rules INTEGER NOT NULL, 
	PRIMARY KEY (old_sha256, new_sha256)
)
 WITHOUT ROWID

;

CREATE TABLE learning_text (
	text_sha256 TEXT NOT NULL, 
	normals BLOB NOT NULL, 
	shapes BLOB NOT NULL, 
	rules INTEGER NOT NULL, 
	PRIMARY KEY (text_sha256)
)
 WITHOUT ROWID

;

CREATE TABLE learning_window (
	document_id INTEGER NOT NULL, 
	state TEXT NOT NULL, 
	rules INTEGER NOT NULL, 
	PRIMARY KEY (document_id)
);

CREATE TABLE watch_state (
	watch_id TEXT NOT NULL, 
	last_check_at TEXT, 
	last_ok_at TEXT, 
	last_change_at TEXT, 
	failing_since TEXT, 
	failure_reason TEXT, 
	failure_alerted INTEGER DEFAULT '0' NOT NULL, 
	consecutive_failures INTEGER DEFAULT '0' NOT NULL, 
	validators TEXT DEFAULT '{}' NOT NULL, 
	since_full INTEGER DEFAULT '0' NOT NULL, 
	next_run_at TEXT, 
	lease_owner TEXT, 
	lease_until TEXT, 
	pending INTEGER DEFAULT '0' NOT NULL, 
	PRIMARY KEY (watch_id), 
	FOREIGN KEY(watch_id) REFERENCES watch (id)
);

CREATE TABLE blob_data (
	sha256 TEXT NOT NULL, 
	data BLOB NOT NULL, 
	PRIMARY KEY (sha256), 
	FOREIGN KEY(sha256) REFERENCES blob (sha256)
);

CREATE TABLE response (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	requested_at TEXT NOT NULL, 
	method TEXT NOT NULL, 
	url TEXT NOT NULL, 
	final_url TEXT NOT NULL, 
	status INTEGER, 
	http_version TEXT, 
	request_headers TEXT NOT NULL, 
	request_body TEXT, 
	headers TEXT NOT NULL, 
	redirects TEXT NOT NULL, 
	server_date TEXT, 
	body_sha256 TEXT NOT NULL, 
	body_size BIGINT NOT NULL, 
	tls TEXT, 
	tls_chain TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(watch_id) REFERENCES watch (id), 
	FOREIGN KEY(request_body) REFERENCES blob (sha256), 
	FOREIGN KEY(body_sha256) REFERENCES blob (sha256), 
	FOREIGN KEY(tls_chain) REFERENCES tls_chain (sha256)
);

CREATE TABLE document (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	url TEXT NOT NULL, 
	language TEXT, 
	title TEXT NOT NULL, 
	published TEXT, 
	first_seen TEXT NOT NULL, 
	removed_at TEXT, 
	chain_head TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (watch_id, "key"), 
	FOREIGN KEY(watch_id) REFERENCES watch (id)
);

CREATE TABLE screenshot (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	taken_at TEXT NOT NULL, 
	url TEXT NOT NULL, 
	sha256 TEXT, 
	width INTEGER, 
	height INTEGER, 
	previous_id INTEGER, 
	changed DOUBLE, 
	regions TEXT, 
	problem TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(watch_id) REFERENCES watch (id), 
	FOREIGN KEY(sha256) REFERENCES blob (sha256), 
	FOREIGN KEY(previous_id) REFERENCES screenshot (id)
);

CREATE INDEX screenshot_watch ON screenshot (watch_id, id);

CREATE TABLE check_run (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	at TEXT NOT NULL, 
	ms INTEGER NOT NULL, 
	outcome TEXT NOT NULL, 
	status INTEGER, 
	detail TEXT, 
	instance TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT check_run_outcome CHECK (outcome IN ('changed','unchanged','problem')), 
	FOREIGN KEY(watch_id) REFERENCES watch (id)
);

CREATE INDEX check_run_watch ON check_run (watch_id, id);

CREATE TABLE discovered (
	watch_id TEXT NOT NULL, 
	parent_id TEXT NOT NULL, 
	"key" TEXT NOT NULL, 
	url TEXT NOT NULL, 
	title TEXT NOT NULL, 
	language TEXT, 
	profile TEXT, 
	published TEXT, 
	translation_group TEXT, 
	discovered_at TEXT NOT NULL, 
	announce INTEGER NOT NULL, 
	listed_sha256 TEXT, 
	last_listed_at TEXT, 
	PRIMARY KEY (watch_id), 
	UNIQUE (parent_id, "key"), 
	FOREIGN KEY(watch_id) REFERENCES watch (id), 
	FOREIGN KEY(parent_id) REFERENCES watch (id)
);

CREATE INDEX discovered_group ON discovered (translation_group);

CREATE TABLE attachment (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	url TEXT NOT NULL, 
	fetched_at TEXT NOT NULL, 
	final_url TEXT NOT NULL, 
	status INTEGER, 
	headers TEXT NOT NULL, 
	etag TEXT, 
	last_modified TEXT, 
	body_sha256 TEXT, 
	body_size BIGINT NOT NULL, 
	media_type TEXT, 
	document_sha256 TEXT, 
	problem TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(watch_id) REFERENCES watch (id), 
	FOREIGN KEY(body_sha256) REFERENCES blob (sha256), 
	FOREIGN KEY(document_sha256) REFERENCES blob (sha256)
);

CREATE INDEX attachment_latest ON attachment (watch_id, url, id);

CREATE TABLE version (
	id INTEGER NOT NULL, 
	document_id INTEGER NOT NULL, 
	seq INTEGER NOT NULL, 
	observed_at TEXT NOT NULL, 
	kind TEXT NOT NULL, 
	response_id INTEGER, 
	text_sha256 TEXT, 
	score DOUBLE DEFAULT '0' NOT NULL, 
	summary TEXT DEFAULT '' NOT NULL, 
	confirmation TEXT, 
	prev_chain TEXT, 
	chain TEXT, 
	watch_chain TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT version_kind CHECK (kind IN ('baseline','published','edited','removed','restored')), 
	UNIQUE (document_id, seq), 
	FOREIGN KEY(document_id) REFERENCES document (id), 
	FOREIGN KEY(response_id) REFERENCES response (id), 
	FOREIGN KEY(text_sha256) REFERENCES blob (sha256)
);

CREATE INDEX version_observed ON version (observed_at, id);

CREATE INDEX version_text_seen ON version (document_id, text_sha256, seq);

CREATE TABLE version_timestamp (
	version_id INTEGER NOT NULL, 
	batch_id INTEGER NOT NULL, 
	head TEXT NOT NULL, 
	PRIMARY KEY (version_id), 
	FOREIGN KEY(version_id) REFERENCES version (id), 
	FOREIGN KEY(batch_id) REFERENCES timestamp_batch (id)
);

CREATE INDEX version_timestamp_batch ON version_timestamp (batch_id);

CREATE TABLE independent_copy (
	id INTEGER NOT NULL, 
	version_id INTEGER NOT NULL, 
	target TEXT NOT NULL, 
	url TEXT NOT NULL, 
	state TEXT NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	stale INTEGER DEFAULT '0' NOT NULL, 
	next_attempt_at TEXT NOT NULL, 
	job_id TEXT, 
	submitted_at TEXT, 
	capture_url TEXT, 
	captured_at TEXT, 
	last_error TEXT, 
	created_at TEXT NOT NULL, 
	updated_at TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT independent_copy_state CHECK (state IN ('queued','submitted','captured','failed')), 
	UNIQUE (version_id, target), 
	FOREIGN KEY(version_id) REFERENCES version (id)
);

CREATE INDEX independent_copy_due ON independent_copy (state, next_attempt_at);

CREATE TABLE version_screenshot (
	version_id INTEGER NOT NULL, 
	screenshot_id INTEGER NOT NULL, 
	PRIMARY KEY (version_id), 
	FOREIGN KEY(version_id) REFERENCES version (id), 
	FOREIGN KEY(screenshot_id) REFERENCES screenshot (id)
);

CREATE TABLE alert (
	id INTEGER NOT NULL, 
	watch_id TEXT NOT NULL, 
	version_id INTEGER, 
	kind TEXT NOT NULL, 
	created_at TEXT NOT NULL, 
	payload TEXT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(watch_id) REFERENCES watch (id), 
	FOREIGN KEY(version_id) REFERENCES version (id)
);

CREATE INDEX alert_created ON alert (created_at, id);

CREATE TABLE annotation (
	id INTEGER NOT NULL, 
	document_id INTEGER NOT NULL, 
	version_id INTEGER, 
	username TEXT NOT NULL, 
	verdict TEXT, 
	note TEXT DEFAULT '' NOT NULL, 
	created_at TEXT NOT NULL, 
	PRIMARY KEY (id), 
	CONSTRAINT annotation_verdict CHECK (verdict IS NULL OR verdict IN ('significant','noise')), 
	FOREIGN KEY(document_id) REFERENCES document (id), 
	FOREIGN KEY(version_id) REFERENCES version (id)
);

CREATE INDEX annotation_document ON annotation (document_id, id);

CREATE INDEX annotation_version ON annotation (version_id, id);

CREATE TABLE delivery (
	id INTEGER NOT NULL, 
	alert_id INTEGER NOT NULL, 
	channel TEXT NOT NULL, 
	status TEXT DEFAULT 'pending' NOT NULL, 
	attempts INTEGER DEFAULT '0' NOT NULL, 
	next_attempt_at TEXT NOT NULL, 
	last_error TEXT, 
	sent_at TEXT, 
	PRIMARY KEY (id), 
	CONSTRAINT delivery_status CHECK (status IN ('pending','sent','dead')), 
	UNIQUE (alert_id, channel), 
	FOREIGN KEY(alert_id) REFERENCES alert (id)
);

CREATE INDEX delivery_due ON delivery (status, next_attempt_at);

CREATE VIRTUAL TABLE version_text USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');

