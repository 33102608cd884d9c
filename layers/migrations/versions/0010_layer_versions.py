"""a version per layer table, bumped by every write that changes rows

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

``layer_versions`` holds one counter per layer table. Statement-level triggers on each
table add one to it in the writing transaction whenever an INSERT, UPDATE or DELETE
changed at least one row, and on TRUNCATE: imports, API edits, grid edits, the derived
fields they refresh and plain SQL alike. Readers cache what they derive from a table
(exact feature counts) under its version; a change commits together with its new
version, so no reader can see new rows under an old version.

A writer holds the counter's row lock until it commits: writes to one layer wait for
each other (they mostly did already, through the rows they share). Rows written
straight into a partition of ``incidents`` (not through ``incidents``) are not seen.
The application role may read the counters; only the trigger function (security
definer) writes them. A layer table added later is tracked when its migration calls
``SELECT track_layer_version('name')``; an untracked table has no row, and readers
then do not cache.

This revision holds its own copy of the layer names (a migration must not change when
the application's code does).
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

APP_ROLE = "safegrid_app"
LAYERS = ("jurisdictions", "grids", "households", "household_units", "key_areas", "cameras",
          "checkpoints", "roads", "buildings", "incidents", "patrol_routes")
EVENTS = (("insert", "INSERT", "NEW"), ("update", "UPDATE", "NEW"), ("delete", "DELETE", "OLD"))


def upgrade() -> None:
    op.execute("CREATE TABLE layer_versions (layer text PRIMARY KEY, "
               "version bigint NOT NULL DEFAULT 0)")
    op.execute(f"REVOKE ALL ON layer_versions FROM {APP_ROLE}")
    op.execute(f"GRANT SELECT ON layer_versions TO {APP_ROLE}")
    op.execute("""
        CREATE FUNCTION bump_layer_version() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM changed_rows) THEN
                UPDATE layer_versions SET version = version + 1 WHERE layer = TG_TABLE_NAME;
            END IF;
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE FUNCTION bump_layer_version_truncate() RETURNS trigger LANGUAGE plpgsql
        SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            UPDATE layer_versions SET version = version + 1 WHERE layer = TG_TABLE_NAME;
            RETURN NULL;
        END $$""")
    triggers = "\n".join(
        f"EXECUTE format('CREATE TRIGGER %I AFTER {event} ON %I REFERENCING {side} TABLE "
        f"AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION bump_layer_version()', "
        f"name || '_version_{suffix}', name);" for suffix, event, side in EVENTS)
    op.execute(f"""
        CREATE FUNCTION track_layer_version(name text) RETURNS void LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO layer_versions (layer) VALUES (name) ON CONFLICT DO NOTHING;
            {triggers}
            EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I FOR EACH STATEMENT '
                           'EXECUTE FUNCTION bump_layer_version_truncate()',
                           name || '_version_truncate', name);
        END $$""")
    for name in LAYERS:
        op.execute(f"SELECT track_layer_version('{name}')")


def downgrade() -> None:
    for name in LAYERS:
        for suffix in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_version_{suffix} ON {name}")
    op.execute("DROP FUNCTION IF EXISTS track_layer_version(text)")
    op.execute("DROP FUNCTION IF EXISTS bump_layer_version_truncate()")
    op.execute("DROP FUNCTION IF EXISTS bump_layer_version()")
    op.execute("DROP TABLE IF EXISTS layer_versions")
