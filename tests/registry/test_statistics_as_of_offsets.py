"""as_of with any valid ISO 8601 offset: PostgreSQL takes only +-15:59, so it is sent in UTC."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "as_of", ["2025-01-01T00:00:00-23:49", "0389-12-23T08:36:43.93-23:49", "2025-01-01"]
)
def test_as_of_with_an_extreme_offset_answers_200(client, as_of):
    response = client.get("/api/v1/statistics/monthly/", {"as_of": as_of, "group_by": "category"})
    assert response.status_code == 200, response.content[:300]


def test_as_of_out_of_datetime_range_is_a_400_naming_it(client):
    response = client.get("/api/v1/statistics/monthly/", {"as_of": "0001-01-01T00:00:00+05:00"})
    assert response.status_code == 400
    assert "as_of" in response.json()["fields"]
