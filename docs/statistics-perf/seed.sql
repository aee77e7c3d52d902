-- Synthetic receipts for timing the statistics rebuild (deterministic: values are hashes of the
-- row number). Run on a freshly migrated, otherwise empty database:
--   psql -v freelancers=200000 -v receipts=2000000 -f docs/statistics-perf/seed.sql <db>
-- 36 months (fiscal years 2023-24 .. 2025-26) in value_date order; 10% unmatched, 1% reversed,
-- 3% Stripe (not counted), 2% under a non-IT purpose code (not counted), 12 remitter countries.
SET synchronous_commit = off;
INSERT INTO payments_bank (code, name, enabled, created_at) VALUES ('PERF', 'Perf bank', true, now())
ON CONFLICT DO NOTHING;
INSERT INTO payments_purposecode (code, description, category, is_it, retired)
VALUES ('1000', 'Non-IT goods', 'goods', false, false) ON CONFLICT DO NOTHING;
INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                       is_active, date_joined)
SELECT '!', false, 'perf' || i, '', '', '', false, true, now()
FROM generate_series(1, :freelancers) i;
INSERT INTO freelancers_freelancer (full_name, mobile, address, city, province, status, created_at,
                                    updated_at, user_id, is_renewal, review_round)
SELECT 'Perf ' || u.id, '', '', '',
       (ARRAY['punjab','sindh','khyber_pakhtunkhwa','balochistan','islamabad','gilgit_baltistan',
              'azad_kashmir',''])[1 + abs(hashint8(u.id)::bigint) % 8],
       'approved', now(), now(), u.id, false, 0
FROM auth_user u WHERE u.username LIKE 'perf%';
CREATE TEMP TABLE perf_ids AS
SELECT min(id) AS f0, max(id) - min(id) + 1 AS nf FROM freelancers_freelancer WHERE full_name LIKE 'Perf %';
INSERT INTO payments_receipt (source, bank_id, reference, iban, amount, currency, usd_amount, pkr_rate,
    value_date, retained_amount, tax_withheld_pkr, remitter_name, remitter_country, reversed_on,
    reversal_reason, created_at, account_id, freelancer_id, purpose_code_id)
SELECT CASE WHEN h1 % 100 < 3 THEN 'stripe' ELSE 'bank' END,
       CASE WHEN h1 % 100 < 3 THEN NULL ELSE b.id END,
       'P' || i, '', amt, 'USD', amt, 280,
       DATE '2023-07-01' + (i * 1096 / :receipts)::int,
       0, 0, '',
       (ARRAY['US','GB','DE','AE','CA','AU','NL','SA','FR','SE','SG','IE'])[1 + h2 % 12],
       CASE WHEN h3 % 100 = 0 THEN DATE '2026-07-01' END, '', now(), NULL,
       CASE WHEN h3 % 10 = 1 THEN NULL ELSE p.f0 + h2 % p.nf END,
       CASE WHEN h1 % 50 = 7 THEN (SELECT id FROM payments_purposecode WHERE code = '1000')
            ELSE (SELECT min(id) FROM payments_purposecode) + h3 % 6 END
FROM (SELECT i, abs(hashint8(i)::bigint) AS h1, abs(hashint8(i + 1000000007)::bigint) AS h2,
             abs(hashint8(i + 2000000014)::bigint) AS h3,
             (1 + abs(hashint8(i + 3000000021)::bigint) % 500000) / 100.0 AS amt
      FROM generate_series(1::bigint, :receipts) i) g
CROSS JOIN perf_ids p CROSS JOIN (SELECT id FROM payments_bank WHERE code = 'PERF') b;
ANALYZE;
