"""The aggregation peer: what a statistician would do by hand with pandas.

Runs inside the peer venv (bench/requirements.txt), not the portal's:
    python bench/peer_pandas.py <database url> <from YYYY-MM> <to YYYY-MM>
Reads the counted receipts with ``pandas.read_sql`` and computes the monthly totals with
``groupby``; prints one JSON line with the time taken and the figures (exact: Decimal sums).
"""

import json
import sys
import time

import pandas as pd
import sqlalchemy

SQL = """
    SELECT r.value_date, r.usd_amount, r.freelancer_id
    FROM payments_receipt r
    JOIN payments_purposecode p ON p.id = r.purpose_code_id
    WHERE r.source = 'bank' AND r.reversed_on IS NULL AND p.is_it
"""


def main() -> None:
    url, month_from, month_to = sys.argv[1:4]
    engine = sqlalchemy.create_engine(url.replace("postgres://", "postgresql+psycopg://", 1))
    start = time.perf_counter()
    with engine.connect() as conn:
        df = pd.read_sql(sqlalchemy.text(SQL), conn)
    df["month"] = pd.to_datetime(df["value_date"]).dt.strftime("%Y-%m")
    monthly = df.groupby("month").agg(
        total_usd=("usd_amount", "sum"),
        receipts=("usd_amount", "size"),
        freelancers=("freelancer_id", "nunique"),
    )
    seconds = time.perf_counter() - start
    months = {
        month: [str(row.total_usd), int(row.receipts), int(row.freelancers)]
        for month, row in monthly.iterrows()
        if month_from <= month <= month_to
    }
    print(json.dumps({"seconds": seconds, "rows": len(df), "months": months}))


if __name__ == "__main__":
    main()
