-- The bare SQL the rebuild is compared with.  \timing on; run each a few times, take the median.
-- (1) bare monthly: the monthly figures of the contract (total, receipts, distinct freelancers).
SELECT date_trunc('month', r.value_date) AS month, SUM(r.usd_amount) AS total_usd, COUNT(*) AS receipts,
       COUNT(DISTINCT r.freelancer_id) AS freelancers
FROM payments_receipt r JOIN payments_purposecode c ON c.id = r.purpose_code_id
WHERE r.source = 'bank' AND r.reversed_on IS NULL AND c.is_it
GROUP BY 1 ORDER BY 1;
