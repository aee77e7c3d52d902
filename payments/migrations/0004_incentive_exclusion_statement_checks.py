"""Exclusions: the two foreign keys checked once per statement instead of once per row.

A computation inserts one exclusion per assessed freelancer who does not qualify (975,746 rows in
the 1,000,000-freelancer benchmark). The declared foreign keys checked each row at COMMIT with
one lookup and lock each: about 11 s, longer than the INSERT itself. The constraints become
triggers that keep the same guarantees:

- after an INSERT or UPDATE of exclusions, ONE set-based query locks the referenced
  registrations and schemes FOR KEY SHARE (as a foreign key's check does, so a concurrent
  delete waits for this transaction) and fails if any referenced row is missing;
- before a registration or a scheme is deleted, or its id changed, a lookup (on the
  freelancer_id index; exclusions have no index on scheme_id alone, the unique (scheme,
  freelancer) one serves) fails if an exclusion still refers to it.

Violations raise SQLSTATE 23503 (foreign_key_violation), which Django reports as IntegrityError,
as before. The checks are immediate (end of statement) where the constraints were deferred to
COMMIT: exclusions are only written by the computation, after the rows they refer to exist.
SQLite (the demo database) gets row-level triggers with the same effect.
"""

import django.db.models.deletion
from django.db import migrations, models

# The referenced tables, the exclusion's column that refers to each, and the trigger's suffix.
REFERENCED = (
    ("freelancers_freelancer", "freelancer_id", "freelancer"),
    ("payments_incentivescheme", "scheme_id", "scheme"),
)

POSTGRES_CHECK_REFERENCES = """
CREATE FUNCTION payments_exclusion_check_references() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM freelancers_freelancer f
    WHERE f.id IN (SELECT n.freelancer_id FROM new_rows n) FOR KEY SHARE OF f;
    PERFORM 1 FROM payments_incentivescheme s
    WHERE s.id IN (SELECT n.scheme_id FROM new_rows n) FOR KEY SHARE OF s;
    IF EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (
            SELECT 1 FROM freelancers_freelancer f WHERE f.id = n.freelancer_id))
        OR EXISTS (SELECT 1 FROM new_rows n WHERE NOT EXISTS (
            SELECT 1 FROM payments_incentivescheme s WHERE s.id = n.scheme_id)) THEN
        RAISE EXCEPTION 'payments_exclusion refers to a registration or scheme that does not exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER payments_exclusion_references_insert AFTER INSERT ON payments_exclusion
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payments_exclusion_check_references();
CREATE TRIGGER payments_exclusion_references_update AFTER UPDATE ON payments_exclusion
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION payments_exclusion_check_references();
"""

POSTGRES_PROTECT = """
CREATE FUNCTION payments_exclusion_protect_{suffix}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id THEN
        RETURN NEW;
    END IF;
    IF EXISTS (SELECT 1 FROM payments_exclusion WHERE {column} = OLD.id) THEN
        RAISE EXCEPTION '{table} % is still referenced from payments_exclusion', OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF TG_OP = 'UPDATE' THEN
        RETURN NEW;
    END IF;
    RETURN OLD;
END $$;
CREATE TRIGGER payments_exclusion_protect_{suffix} BEFORE DELETE OR UPDATE OF id ON {table}
    FOR EACH ROW EXECUTE FUNCTION payments_exclusion_protect_{suffix}();
"""

POSTGRES_REVERSE = """
DROP TRIGGER payments_exclusion_protect_scheme ON payments_incentivescheme;
DROP FUNCTION payments_exclusion_protect_scheme();
DROP TRIGGER payments_exclusion_protect_freelancer ON freelancers_freelancer;
DROP FUNCTION payments_exclusion_protect_freelancer();
DROP TRIGGER payments_exclusion_references_update ON payments_exclusion;
DROP TRIGGER payments_exclusion_references_insert ON payments_exclusion;
DROP FUNCTION payments_exclusion_check_references();
"""

# SQLite: row-level triggers (it has no statement-level ones); RAISE(ABORT) is an IntegrityError.
SQLITE_MISSING = """
    WHEN NOT EXISTS (SELECT 1 FROM freelancers_freelancer WHERE id = NEW.freelancer_id)
      OR NOT EXISTS (SELECT 1 FROM payments_incentivescheme WHERE id = NEW.scheme_id)"""
SQLITE_FAIL = "BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed'); END"
SQLITE_REFERENCED = "EXISTS (SELECT 1 FROM payments_exclusion WHERE {column} = OLD.id)"


def sqlite_triggers() -> dict[str, str]:
    """Name -> CREATE TRIGGER statement."""
    triggers = {
        "payments_exclusion_references_insert": (
            f"BEFORE INSERT ON payments_exclusion {SQLITE_MISSING}"
        ),
        "payments_exclusion_references_update": (
            f"BEFORE UPDATE OF freelancer_id, scheme_id ON payments_exclusion {SQLITE_MISSING}"
        ),
    }
    for table, column, suffix in REFERENCED:
        referenced = SQLITE_REFERENCED.format(column=column)
        triggers[f"payments_exclusion_protect_{suffix}"] = (
            f"BEFORE DELETE ON {table} WHEN {referenced}"
        )
        triggers[f"payments_exclusion_protect_{suffix}_id"] = (
            f"BEFORE UPDATE OF id ON {table} WHEN NEW.id <> OLD.id AND {referenced}"
        )
    return {name: f"CREATE TRIGGER {name} {body} {SQLITE_FAIL}" for name, body in triggers.items()}


def create_checks(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_CHECK_REFERENCES, params=None)
        for table, column, suffix in REFERENCED:
            sql = POSTGRES_PROTECT.format(table=table, column=column, suffix=suffix)
            schema_editor.execute(sql, params=None)
    elif vendor == "sqlite":
        for statement in sqlite_triggers().values():
            schema_editor.execute(statement, params=None)


def drop_checks(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_REVERSE, params=None)
    elif vendor == "sqlite":
        for name in sqlite_triggers():
            schema_editor.execute(f"DROP TRIGGER {name}", params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("freelancers", "0005_name_prefix_index"),
        ("payments", "0003_stripe_invoices_events_payouts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="exclusion",
            name="freelancer",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="freelancers.freelancer",
            ),
        ),
        migrations.AlterField(
            model_name="exclusion",
            name="scheme",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="exclusions",
                to="payments.incentivescheme",
            ),
        ),
        migrations.RunPython(create_checks, drop_checks),
    ]
