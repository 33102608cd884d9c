"""row-level security on incidents and households for the application role

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23

The web application runs every request as ``safegrid_app`` (``SET LOCAL ROLE``) with
the caller's scope in transaction settings; these policies then hide every incident
and household outside that scope, whatever the query asks for. Without settings the
role sees nothing.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

APP_ROLE = "safegrid_app"
SCOPED = ("incidents", "households")
# EWKB of an empty geometry (SRID 4326): the zone when the scope has none. The zone
# expression may be evaluated even when an earlier OR branch holds, so it must parse.
EMPTY_ZONE = "0107000020E610000000000000"
# Each setting is read in a sub-select: PostgreSQL evaluates it once per query (an
# InitPlan), not once per row.
POLICY = f"""
    (SELECT current_setting('safegrid.scope_all', true) = 'on')
    OR jurisdiction_code = ANY ((SELECT string_to_array(
           nullif(current_setting('safegrid.scope_codes', true), ''), ','))::text[])
    OR ST_Intersects(geom, (SELECT ST_GeomFromEWKB(decode(coalesce(
           nullif(current_setting('safegrid.scope_zone', true), ''), '{EMPTY_ZONE}'), 'hex'))))
"""


def upgrade() -> None:
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
            END IF;
        EXCEPTION  -- roles belong to the cluster: another database migrating meanwhile
            WHEN duplicate_object OR unique_violation THEN NULL;
        END $$""")
    op.execute(f"GRANT {APP_ROLE} TO CURRENT_USER")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
               f"TO {APP_ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, "
               f"DELETE ON TABLES TO {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES "
               f"TO {APP_ROLE}")
    op.execute(f"REVOKE ALL ON users, api_tokens FROM {APP_ROLE}")
    for table in SCOPED:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {table}_in_scope ON {table} FOR ALL TO {APP_ROLE} "
                   f"USING ({POLICY}) WITH CHECK ({POLICY})")


def downgrade() -> None:
    for table in SCOPED:
        op.execute(f"DROP POLICY IF EXISTS {table}_in_scope ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM {APP_ROLE}")
    op.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES "
               f"FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {APP_ROLE}")
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
