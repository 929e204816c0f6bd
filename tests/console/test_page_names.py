"""What the queue and a ticket's page name and offer, in both languages: each row's
street and community, the filter's choices (the scope's areas), the counts by status, a
ticket's areas, the streets it may be transferred to and the open tickets nearby it may
be merged into — the names read with the scope or the ticket, not looked up again."""

import html
import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select

from app.db import Database
from app.models import Area, AreaLevel, Ticket
from tests.conftest import Auth, Baseline
from tests.console.conftest import DISTRICT, OFFICER, Clerk, report
from tests.helpers import HUAYANG, JIANGSU, act

ENGLISH = {"Accept-Language": "en"}


@pytest.fixture
def clerks(app: FastAPI, baseline: Baseline) -> Iterator[tuple[Clerk, Clerk]]:
    officer, district = Clerk(app, baseline, OFFICER), Clerk(app, baseline, DISTRICT)
    yield officer, district
    officer.http.close()
    district.http.close()


def names(database: Database, *where: Any) -> list[tuple[str, str, str]]:
    """(code, Chinese name, English name) of the areas ``where`` says, by code."""
    with database.session() as session:
        rows = session.execute(
            select(Area.code, Area.name, Area.name_en).where(*where).order_by(Area.code)
        )
        return [(code, name, name_en or name) for code, name, name_en in rows]


def area_of(database: Database, code: str) -> Area:
    with database.session() as session:
        area = session.scalar(select(Area).where(Area.code == code))
        assert area is not None
        return area


def areas_of_ticket(database: Database, ticket_id: str) -> tuple[str, str]:
    """The codes of a ticket's street and community."""
    with database.session() as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None and ticket.street_id and ticket.community_id
        street, community = (session.get(Area, i) for i in (ticket.street_id, ticket.community_id))
        assert street is not None and community is not None
        return street.code, community.code


def photo_numbered(client: TestClient, auth: Auth, n: int, *, rider: str = "c-1") -> str:
    """The id of the demo's ``n``-th photo, uploaded by ``rider`` (each n another photo)."""
    from app.ops.demo_reports import photo

    uploaded = client.post(
        "/v1/media",
        headers=auth.rider("meituan", rider),
        files={"file": ("photo.jpg", photo(n), "image/jpeg")},
    )
    assert uploaded.status_code == 201, uploaded.text
    return str(uploaded.json()["id"])


def choices(page: str, select_id: str) -> list[tuple[str, str]]:
    """(value, text) of the options of ``<select id=select_id>`` but its empty one."""
    found = re.search(rf'<select id="{select_id}"[^>]*>(.*?)</select>', page, re.S)
    assert found, f"no {select_id} on the page"
    options = re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', found[1], re.S)
    return [(value, html.unescape(text.strip())) for value, text in options if value]


def row_of(page: str, ticket_id: str) -> str:
    found = re.search(rf'<tr data-ticket="{ticket_id}".*?</tr>', page, re.S)
    assert found, f"no row of {ticket_id}"
    return html.unescape(found[0])


def test_the_queue_names_each_row_and_offers_the_scopes_areas(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth, database: Database
) -> None:
    officer, district = clerks
    mine = report(client, auth, JIANGSU)["ticket"]
    theirs = report(client, auth, HUAYANG, rider="c-2")["ticket"]
    street = area_of(database, OFFICER.removeprefix("officer_"))
    changning = area_of(database, "310105")
    streets = names(database, Area.parent_id == changning.id, Area.level == AreaLevel.STREET)
    own_communities = names(database, Area.parent_id == street.id)
    communities = names(
        database,
        Area.level == AreaLevel.COMMUNITY,
        Area.parent_id.in_(select(Area.id).where(Area.parent_id == changning.id)),
    )
    assert len(communities) > len(own_communities) > 1

    for headers, language in (({}, 1), (ENGLISH, 2)):
        page = officer.get("/console/queue", headers=headers).text
        assert 'id="f-street"' not in page  # an officer's queue is one street's
        assert choices(page, "f-community") == [(c[0], c[language]) for c in own_communities]
        page = district.get("/console/queue", headers=headers).text
        assert choices(page, "f-street") == [(s[0], s[language]) for s in streets]
        assert choices(page, "f-community") == [(c[0], c[language]) for c in communities]
        assert choices(page, "bulk-street") == [(s[0], s[language]) for s in streets]
        for ticket in (mine, theirs):
            street_code, community_code = areas_of_ticket(database, ticket["id"])
            row = row_of(page, ticket["id"])
            for code in (street_code, community_code):
                (named,) = [a for a in streets + communities if a[0] == code]
                assert f"<td>{named[language]}</td>" in row, row
    chosen = district.get(f"/console/queue?community={own_communities[0][0]}").text
    assert re.search(rf'<option value="{own_communities[0][0]}" selected>', chosen)


def test_the_queue_counts_each_status_of_its_scope_and_a_change_at_once(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth
) -> None:
    officer, district = clerks
    first = report(client, auth, JIANGSU)["ticket"]
    report(client, auth, JIANGSU, rider="c-2", north_m=-200)
    report(client, auth, HUAYANG, rider="c-3")

    def counted(clerk: Clerk) -> dict[str, int]:
        page = clerk.get("/console/queue").text
        every = re.search(r'aria-current="true">\s*\S+ <b>(\d+)</b>', page)
        assert every, "no count of all"
        found = dict(re.findall(r'<b data-status="(\w+)">(\d+)</b>', page))
        counts = {status: int(n) for status, n in found.items() if n != "0"}
        assert int(every[1]) == sum(counts.values())
        return counts

    assert counted(officer) == {"new": 2}
    assert counted(district) == {"new": 3}
    path = f"/console/tickets/{first['id']}"
    version = re.search(r'name="version" value="(\d+)"', officer.get(path).text)
    assert version
    done = officer.post(f"{path}/actions", {"action": "accept", "version": version[1]})
    assert done.status_code == 303
    assert counted(officer) == {"new": 1, "accepted": 1}
    assert counted(district) == {"new": 2, "accepted": 1}


def test_a_tickets_page_names_its_areas_and_offers_the_streets_and_tickets_nearby(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth, database: Database
) -> None:
    officer, district = clerks
    ticket = report(client, auth, JIANGSU, category="waste")["ticket"]
    near = report(client, auth, JIANGSU, rider="c-2", category="waste", north_m=-150)["ticket"]
    far = report(client, auth, JIANGSU, rider="c-3", category="waste", north_m=-400)["ticket"]
    other = report(client, auth, JIANGSU, rider="c-4", category="road_damage", north_m=-60)
    assert len({ticket["id"], near["id"], far["id"], other["ticket"]["id"]}) == 4
    street_code, community_code = areas_of_ticket(database, ticket["id"])
    changning = area_of(database, "310105")
    streets = names(database, Area.parent_id == changning.id, Area.level == AreaLevel.STREET)
    (community,) = names(database, Area.code == community_code)
    (street,) = [s for s in streets if s[0] == street_code]
    path = f"/console/tickets/{ticket['id']}"

    for clerk in (officer, district):
        for headers, language in (({}, 1), (ENGLISH, 2)):
            page = clerk.get(path, headers=headers).text
            grid = re.search(r'<dl class="grid">.*?</dl>', page, re.S)
            assert grid
            facts = html.unescape(grid[0])
            assert f"<dd>{street[language]}</dd>" in facts
            assert f"<dd>{community[language]}</dd>" in facts
            others = [(s[0], s[language]) for s in streets if s[0] != street_code]
            assert choices(page, "street-transfer") == others
            (merge,) = choices(page, "into-merge")
            assert merge[0] == near["id"]
            metres = re.fullmatch(rf"{near['ref']} · (\d+) m · \S+", merge[1])
            assert metres and 140 <= int(metres[1]) <= 160, merge
            spot = re.search(r'data-candidates="([^"]*)"', page)
            assert spot
            on_map = json.loads(html.unescape(spot[1]))
            assert [c["ref"] for c in on_map] == [near["ref"]]
            assert on_map[0]["url"] == f"/console/tickets/{near['id']}"
            assert 'name="unit"' not in page  # a new ticket is not dispatched yet

    # Rejected: nothing to transfer it to, nothing to merge it into.
    version = re.search(r'name="version" value="(\d+)"', officer.get(path).text)
    assert version
    done = officer.post(
        f"{path}/actions", {"action": "reject", "reason": "spam", "version": version[1]}
    )
    assert done.status_code == 303
    page = officer.get(path).text
    assert 'id="street-transfer"' not in page and 'id="into-merge"' not in page


def test_a_tickets_page_shows_each_reports_photos_in_order_and_which_are_published(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth
) -> None:
    officer, _ = clerks
    photos = [photo_numbered(client, auth, 2), photo_numbered(client, auth, 3)]
    ticket = report(client, auth, JIANGSU, category="waste", media_ids=photos)["ticket"]
    later = photo_numbered(client, auth, 4, rider="c-2")
    joined = report(client, auth, JIANGSU, rider="c-2", category="waste", media_ids=[later])
    assert joined["ticket"]["id"] == ticket["id"]
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "accept"})
    published = officer.post(f"/console/media/{photos[1]}/public", {"box": "10,10,40,30"})
    assert published.status_code == 303, published.text[-2000:]

    page = officer.get(f"/console/tickets/{ticket['id']}").text
    figures = re.findall(r'<figure class="photo-item">(.*?)</figure>', page, re.S)
    shown = [re.search(r"/console/media/([0-9a-f-]{36})/thumbnail", f) for f in figures]
    assert [m[1] for m in shown if m] == [*photos, later]
    assert ["badge published" in f for f in figures] == [False, True, False]


def test_the_queue_names_the_areas_as_they_are_now(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth, database: Database
) -> None:
    """A process keeps a scope's names; an area renamed is named anew on the next page."""
    officer, district = clerks
    ticket = report(client, auth, JIANGSU)["ticket"]
    _, community_code = areas_of_ticket(database, ticket["id"])
    for clerk in (officer, district):
        assert choices(clerk.get("/console/queue").text, "f-community")  # names kept
    with database.transaction() as session:
        community = session.scalar(select(Area).where(Area.code == community_code))
        assert community is not None
        community.name = "新命名的社区"
    for clerk in (officer, district):
        page = clerk.get("/console/queue").text
        assert (community_code, "新命名的社区") in choices(page, "f-community")
        assert "<td>新命名的社区</td>" in row_of(page, ticket["id"])


def test_the_map_draws_each_ticket_of_the_filter_where_it_is(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth, database: Database
) -> None:
    officer, district = clerks
    late = report(client, auth, JIANGSU, category="waste")["ticket"]
    on_time = report(client, auth, JIANGSU, rider="c-2", category="road_damage", north_m=-200)
    theirs = report(client, auth, HUAYANG, rider="c-3")["ticket"]
    with database.transaction() as session:
        ticket = session.get(Ticket, uuid.UUID(late["id"]))
        assert ticket is not None
        ticket.respond_by = ticket.created_at - timedelta(hours=1)
        places = {
            t.ref: [round(to_shape(t.location).x, 7), round(to_shape(t.location).y, 7)]
            for t in session.scalars(select(Ticket))
        }

    def drawn(clerk: Clerk, query: str = "", **headers: str) -> dict[str, Any]:
        answer = clerk.get(f"/console/map/tickets{query}", headers=headers)
        assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
        return {f["properties"]["ref"]: f for f in answer.json()["features"]}

    mine = drawn(officer)
    assert set(mine) == {late["ref"], on_time["ticket"]["ref"]}
    feature = mine[late["ref"]]
    assert feature["geometry"] == {"type": "Point", "coordinates": places[late["ref"]]}
    assert feature["properties"] == {
        "id": late["id"],
        "ref": late["ref"],
        "status": "new",
        "overdue": True,
        "category": "垃圾堆放",
        "url": f"/console/tickets/{late['id']}",
    }
    assert mine[on_time["ticket"]["ref"]]["properties"]["overdue"] is False
    assert set(drawn(officer, "?overdue=1")) == {late["ref"]}
    assert set(drawn(district)) == {late["ref"], on_time["ticket"]["ref"], theirs["ref"]}
    english = drawn(district, "?category=waste", **ENGLISH)
    assert set(english) == {late["ref"]}
    assert english[late["ref"]]["properties"]["category"] == "Dumped waste"
