"""The content tables: what each stage takes in and puts out, each row with its status
and the id of the item it came from."""

from __future__ import annotations

DDL = (
    "CREATE TABLE IF NOT EXISTS keywords ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, keyword TEXT NOT NULL, "
    "keyword_key TEXT NOT NULL, volume BIGINT, status TEXT NOT NULL, cluster_id TEXT, "
    "created_at TEXT NOT NULL, UNIQUE (site_id, keyword_key))",
    "CREATE TABLE IF NOT EXISTS clusters ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, name TEXT NOT NULL, "
    "keyword_ids TEXT NOT NULL, "
    "keywords TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS ideas ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, cluster_id TEXT NOT NULL, "
    "title TEXT NOT NULL, "
    "description TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tasks ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, idea_id TEXT NOT NULL, "
    "title TEXT NOT NULL, "
    "description TEXT NOT NULL, keywords TEXT NOT NULL, status TEXT NOT NULL, "
    "created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS content ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, task_id TEXT NOT NULL, "
    "title TEXT NOT NULL, "
    "outline TEXT NOT NULL, body TEXT NOT NULL, word_count BIGINT NOT NULL, "
    "status TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS image_prompts ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, content_id TEXT NOT NULL, "
    "prompt TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS images ("
    "id TEXT PRIMARY KEY NOT NULL, site_id TEXT NOT NULL, content_id TEXT NOT NULL, "
    "image_prompt_id TEXT NOT NULL, media_type TEXT NOT NULL, data TEXT NOT NULL, "
    "status TEXT NOT NULL, created_at TEXT NOT NULL)",
    # One row per committed batch: a redelivered batch finds it and does no work twice.
    "CREATE TABLE IF NOT EXISTS batch_receipts ("
    "run_id TEXT NOT NULL, stage INTEGER NOT NULL, batch INTEGER NOT NULL, "
    "processed BIGINT NOT NULL, created BIGINT NOT NULL, credits BIGINT NOT NULL, "
    "output_ids TEXT NOT NULL, PRIMARY KEY (run_id, stage, batch))",
    # Pending and done per site and stage, kept in the same transactions as the content.
    "CREATE TABLE IF NOT EXISTS pipeline_counts ("
    "site_id TEXT NOT NULL, stage INTEGER NOT NULL, pending BIGINT NOT NULL DEFAULT 0, "
    "done BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (site_id, stage))",
    *(
        f"CREATE INDEX IF NOT EXISTS {table}_site_status ON {table} (site_id, status, created_at)"
        for table in (
            "keywords",
            "clusters",
            "ideas",
            "tasks",
            "content",
            "image_prompts",
            "images",
        )
    ),
)

# What waits at each stage: (table, status of a pending item, status once processed).
STAGE_INPUTS: dict[int, tuple[str, str, str]] = {
    1: ("keywords", "new", "clustered"),
    2: ("clusters", "new", "done"),
    3: ("ideas", "new", "queued"),
    4: ("tasks", "queued", "done"),
    5: ("content", "draft", "prompted"),
    6: ("image_prompts", "new", "rendered"),
}

# The listings of the API: kind -> (table, columns shown).
LISTINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "keywords": ("keywords", ("id", "keyword", "volume", "status", "cluster_id", "created_at")),
    "clusters": ("clusters", ("id", "name", "keyword_ids", "keywords", "status", "created_at")),
    "ideas": ("ideas", ("id", "cluster_id", "title", "description", "status", "created_at")),
    "tasks": ("tasks", ("id", "idea_id", "title", "status", "created_at")),
    "content": ("content", ("id", "task_id", "title", "word_count", "status", "created_at")),
    "image_prompts": ("image_prompts", ("id", "content_id", "prompt", "status", "created_at")),
    "images": (
        "images",
        ("id", "content_id", "image_prompt_id", "media_type", "status", "created_at"),
    ),
}
JSON_COLUMNS = frozenset({"keyword_ids", "outline", "keywords"})
