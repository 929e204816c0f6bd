import pytest

@pytest.mark.parametrize("i", range(20))
def test_categories(client, i, auth):
    r = client.get("/v1/categories")
    assert r.status_code == 200
    assert len(r.json()["items"]) == 7
    h = auth.staff("officer_310105002")
    r = client.get("/v1/office/areas", headers=h)
    assert r.status_code == 200, r.text
    assert len(r.json()["features"]) == 21
