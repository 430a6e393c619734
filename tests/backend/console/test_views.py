"""The queue page's standing case notices: the cases a release from detention still tightens,
for whoever receives their notices; a link to the case only where the console can open it."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from backend.alerts import service as alerts_service
from backend.alerts.models import Alert
from backend.auth.users import add_user
from backend.cases.models import Case, CaseContact
from backend.devices.models import Device
from tests.backend.auth.test_sessions import PASSWORD, _sign_in
from tests.backend.auth.world import build


def test_standing_notices_for_the_desk_link_the_case_and_for_the_police_name_it(stack):
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        case = s.get(Case, world.rotterdam_case)
        case.custody_status = "released"
        case.custody_tightened_release = datetime.now(UTC) - timedelta(hours=1)
        case.custody_tightened_until = datetime.now(UTC) + timedelta(days=13)
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        add_user(s, "agent", PASSWORD, "police", {"units": ["RE07"]})
        add_user(s, "elsewhere", PASSWORD, "police", {"units": ["RE05"]})
    link = f'href="/console/cases/{world.rotterdam_case}"'

    desk, _ = _sign_in(stack, "desk")
    page = desk.get("/console/").text
    assert 'data-case-links="1"' in page and link in page and "C-RDAM" in page

    agent, _ = _sign_in(stack, "agent")
    page = agent.get("/console/").text
    assert 'data-case-links="0"' in page and '<span class="case-ref">C-RDAM</span>' in page
    assert link not in page  # a case page the police cannot open
    assert agent.get(f"/console/cases/{world.rotterdam_case}").status_code == 404

    elsewhere, _ = _sign_in(stack, "elsewhere")
    assert "C-RDAM" not in elsewhere.get("/console/").text


def test_the_alert_page_shows_the_safety_plan_only_to_who_may_read_cases(stack):
    """The police see the alert and its case card (risk, custody, contacts), not the case's
    safety plan nor a link to a case page they cannot open: the API refuses them the case."""
    world = build(stack)
    plan = "Sleutel bij de buren; code woord: tulp"
    with stack.runtime.sessions.begin() as s:
        s.get(Case, world.rotterdam_case).safety_plan = plan
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        add_user(s, "agent", PASSWORD, "police", {"units": ["RE07"]})
    path = f"/console/alerts/{world.rotterdam_alert}"
    link = f'href="/console/cases/{world.rotterdam_case}"'

    desk, _ = _sign_in(stack, "desk")
    page = desk.get(path)
    assert page.status_code == 200 and plan in page.text and link in page.text

    agent, _ = _sign_in(stack, "agent")
    page = agent.get(path)
    assert page.status_code == 200 and "C-RDAM" in page.text
    assert plan not in page.text and link not in page.text
    assert agent.get(f"/api/v1/cases/{world.rotterdam_case}").status_code == 403


def test_pages_name_every_alert_type_and_say_ja(stack):
    """No raw key on a page: a zone breach is named on its alert page, and the Dutch device
    board says "ja" (an unquoted `yes:` in the catalogue was the boolean true)."""
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        alert = Alert(case_id=world.rotterdam_case, device_id="off-rdam", message_id="zb-1",
                      type="zone_breach", priority="P1", state="new",
                      raised_at=datetime.now(UTC), police_unit="RE07",
                      region={"vr_code": "VR17"}, flags=[])
        s.add(alert)
        s.flush()
        alert_id = alert.id
        device = s.get(Device, "vic-rdam")
        device.online, device.tamper = True, True
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    desk, _ = _sign_in(stack, "desk")
    page = desk.get(f"/console/alerts/{alert_id}?lang=nl").text
    assert "zoneoverschrijding <small" in page  # the heading names the type
    board = desk.get("/console/devices?lang=nl").text
    assert "<td>ja</td>" in board and "<td>yes</td>" not in board


def test_the_regions_page_shows_each_viewer_only_the_regions_it_may_see(stack):
    """Region figures are scoped as the rest of the console: a dispatcher sees her regions',
    the police those of the safety regions in their units, an administrator every region's;
    a case director none, and the console does not link the page for her."""
    build(stack)  # alerts in VR17 (Rotterdam-Rijnmond) and VR13 (Amsterdam-Amstelland)
    with stack.runtime.sessions.begin() as s:
        s.add(Alert(case_id=None, device_id=None, message_id="m-dordrecht", type="panic",
                    priority="P1", state="acknowledged", raised_at=datetime.now(UTC),
                    acknowledged_at=datetime.now(UTC), police_unit="RE07",
                    region={"vr_code": "VR18"}, flags=[]))
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        add_user(s, "agent", PASSWORD, "police", {"units": ["RE07"]})
        add_user(s, "director", PASSWORD, "case_director", {"cases": ["C-RDAM"]})
        add_user(s, "chief", PASSWORD, "admin", {})

    def shown(username: str) -> tuple[set[str], str]:
        client, _ = _sign_in(stack, username)
        page = client.get("/console/regions?lang=en")
        assert page.status_code == 200
        return set(re.findall(r'class="label">(VR\d\d)</text>', page.text)), page.text

    assert shown("desk")[0] == {"VR17"}
    assert shown("agent")[0] == {"VR17", "VR18"}  # RE07: Rotterdam-Rijnmond and ZH-Zuid
    assert shown("chief")[0] == {"VR13", "VR17", "VR18"}
    labels, page = shown("director")
    assert labels == set() and 'id="no-regions"' in page
    director, _ = _sign_in(stack, "director")
    assert 'href="/console/regions"' not in director.get("/console/").text
    desk, _ = _sign_in(stack, "desk")
    assert 'href="/console/regions"' in desk.get("/console/").text


def test_the_regions_page_counts_only_the_alerts_of_its_window(stack):
    """The figures cover the alerts raised in the last `console.region_figures_days` days: an
    older alert is neither counted nor read."""
    build(stack)
    days = stack.runtime.settings.console.region_figures_days
    old = datetime.now(UTC) - timedelta(days=days, hours=1)
    with stack.runtime.sessions.begin() as s:
        for n, raised_at in enumerate([old, old, datetime.now(UTC)]):
            s.add(Alert(case_id=None, device_id=None, message_id=f"m-dordrecht-{n}",
                        type="panic", priority="P1", state="acknowledged", raised_at=raised_at,
                        acknowledged_at=raised_at + timedelta(seconds=30 + 600 * (n < 2)),
                        police_unit="RE07", region={"vr_code": "VR18"}, flags=[]))
        add_user(s, "chief", PASSWORD, "admin", {})
    chief, _ = _sign_in(stack, "chief")
    page = chief.get("/console/regions?lang=en").text
    assert f"in the last {days} days" in page
    # VR18's median time to acknowledge is the recent alert's 30 s, not the old ones' 630 s.
    bar = r'class="label">VR18</text>\s*<rect[^>]*></rect>\s*<text[^>]*>30(\.0)?<'
    assert re.search(bar, page), page[page.find("VR18") - 200:page.find("VR18") + 400]


def test_the_alert_page_names_a_delivery_outcome_on_the_timeline(stack):
    """A delivery entry says how it ended (a device ack given up, a police feed not reached),
    not only who delivered."""
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        alerts_service.add_event(
            s, world.rotterdam_alert, at=datetime.now(UTC), actor="device feedback",
            kind="delivery", detail={"channel": "mqtt", "outbox_id": 1, "state": "expired"})
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    desk, _ = _sign_in(stack, "desk")
    page = desk.get(f"/console/alerts/{world.rotterdam_alert}?lang=nl").text
    assert "device feedback: aflevering" in page
    assert "(niet op tijd afgeleverd, opgegeven)" in page


def test_the_dutch_alert_page_names_the_case_and_timeline_in_dutch(stack):
    """Risk, custody, a contact's organisation and the timeline's kinds in the page's language,
    not the stored English values."""
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        case = s.get(Case, world.rotterdam_case)
        case.risk_level, case.custody_status = "high", "released"
        s.add(CaseContact(case_id=case.id, organisation="three_ro", name="J. Jansen",
                          phone="+31100000000"))
        alerts_service.add_event(s, world.rotterdam_alert, at=datetime.now(UTC),
                                 actor="user:colleague", kind="note", detail={"note": "gebeld"})
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        s.get(Alert, world.rotterdam_alert).police_delivery = "pending"
    desk, _ = _sign_in(stack, "desk")
    page = desk.get(f"/console/alerts/{world.rotterdam_alert}?lang=nl").text
    card = page[page.index('id="case-card"'):page.index('class="card timeline"')]
    assert "<dd>hoog</dd>" in card and "<dd>vrijgelaten" in card
    assert "<td>Reclassering (3RO)</td>" in card
    for raw in (">high<", ">released", ">three_ro<"):
        assert raw not in card
    assert "user:colleague: notitie" in page
    assert "Politie-aflevering: wordt verstuurd" in page


def test_the_alert_page_tells_the_desk_what_the_alert_lacks(stack):
    """An alarm without a position and routed without a 3RO contact says so on its page."""
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        alert = s.get(Alert, world.rotterdam_alert)
        alert.flags = ["no_fix"]
        alert.escalation = {**(alert.escalation or {}), "warnings": ["no_three_ro_contact"]}
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    desk, _ = _sign_in(stack, "desk")
    page = desk.get(f"/console/alerts/{world.rotterdam_alert}?lang=en").text
    assert 'id="alert-notes"' in page
    assert "No position: the alarm carried none" in page
    assert "The case names no 3RO contact to inform." in page


def test_a_partner_reads_the_case_log_of_her_cases_and_nothing_of_their_alerts(stack):
    """A partner organisation's contact person (3RO, Vrouwenopvang, the OM) signs in and
    reads the case log of the cases in her scope: notes and changes, no alert timeline, no
    link to an alert; another case is not found; the desk sees both."""
    world = build(stack)
    admin = stack.api()
    case = f"/api/v1/cases/{world.rotterdam_case}"
    assert admin.post(f"{case}/log/notes", json={"text": "Reclassering: afspraak op 9 dec."}
                      ).status_code == 201
    assert admin.patch(case, json={"risk_level": "high"}).status_code == 200
    ack = admin.post(f"/api/v1/alerts/{world.rotterdam_alert}/acknowledge")
    assert ack.status_code == 200  # on the alert's timeline and in the case log
    with stack.runtime.sessions.begin() as s:
        add_user(s, "reclassering", PASSWORD, "partner", {"cases": ["C-RDAM"]})
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})

    partner, _ = _sign_in(stack, "reclassering")
    page = partner.get(f"/console/cases/{world.rotterdam_case}")
    assert page.status_code == 200
    log = page.text.split('id="case-log"', 1)[1]
    assert "Reclassering: afspraak op 9 dec." in log
    assert 'data-kind="measure"' in log and "risk_level" in log
    assert 'data-kind="transition"' in log  # the acknowledgement, without a position
    assert 'id="case-alerts"' not in page.text and "/console/alerts/" not in page.text
    assert partner.get(f"/console/cases/{world.amsterdam_case}").status_code == 404
    assert partner.get(f"/console/alerts/{world.rotterdam_alert}").status_code == 404
    home = partner.get("/console/").text  # her cases, not an alert queue
    assert f'href="/console/cases/{world.rotterdam_case}"' in home and "C-ADAM" not in home
    assert 'id="alert-queue"' not in home and 'href="/console/devices"' not in home
    assert "vic-rdam" not in partner.get("/console/devices").text  # nor the device board

    desk, _ = _sign_in(stack, "desk")
    assert "vic-rdam" in desk.get("/console/devices").text
    page = desk.get(f"/console/cases/{world.rotterdam_case}").text
    assert 'href="/console/devices"' in page and 'id="case-alerts"' in page and f"/console/alerts/{world.rotterdam_alert}" in page
    assert "Reclassering: afspraak op 9 dec." in page.split('id="case-log"', 1)[1]


def test_the_case_page_shows_only_the_timelines_of_the_alerts_the_viewer_may_see(stack):
    """A dispatcher of VR13 sees the Rotterdam case for its one alert in Amsterdam; the case's
    Rotterdam alert is not hers (the API answers 404), nor is its timeline with its note on
    the case page. The desk of VR17 sees both alerts' timelines."""
    world = build(stack)
    note = "car 12 to Vlietlandplein 4, victim hiding next door"
    with stack.runtime.sessions.begin() as s:
        amsterdam = Alert(case_id=world.rotterdam_case, device_id="vic-rdam",
                          message_id="m-in-adam", type="panic", priority="P1",
                          state="resolved", raised_at=datetime.now(UTC) - timedelta(days=30),
                          police_unit="RE05", region={"vr_code": "VR13"}, flags=[])
        s.add(amsterdam)
        s.flush()
        alerts_service.add_event(s, amsterdam.id, at=datetime.now(UTC) - timedelta(days=30),
                                 actor="user:desk13", kind="transition", to_state="resolved",
                                 detail={"note": "resolved in Amsterdam"})
        alerts_service.add_event(s, world.rotterdam_alert, at=datetime.now(UTC),
                                 actor="user:desk17", kind="transition", to_state="dispatched",
                                 detail={"note": note})
        add_user(s, "desk13", PASSWORD, "dispatcher", {"regions": ["VR13"]})
        add_user(s, "desk17", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        amsterdam_id = amsterdam.id
    page_path = f"/console/cases/{world.rotterdam_case}"

    desk13, _ = _sign_in(stack, "desk13")
    assert desk13.get(f"/api/v1/alerts/{world.rotterdam_alert}").status_code == 404
    page = desk13.get(page_path)
    assert page.status_code == 200 and "resolved in Amsterdam" in page.text
    assert f"/console/alerts/{amsterdam_id}" in page.text
    assert note not in page.text and str(world.rotterdam_alert) not in page.text

    desk17, _ = _sign_in(stack, "desk17")
    page = desk17.get(page_path).text
    assert note in page and "resolved in Amsterdam" in page


def test_an_out_of_date_sign_in_page_says_so_and_gives_a_fresh_form(stack):
    """Two sign-in tabs: the second replaced the login token's cookie, so the first one's form
    is out of date. It is told so (not "wrong password"), with a form that then signs in."""
    from fastapi.testclient import TestClient

    from backend.api.app import create_app

    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    stack.runtime.settings.console.secure_cookies = False
    client = TestClient(create_app(stack.runtime), base_url="http://127.0.0.1")

    def token(page: str) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', page).group(1)

    older = token(client.get("/console/login?lang=en").text)
    token(client.get("/console/login?lang=en").text)  # the second tab
    form = {"username": "desk", "password": PASSWORD}
    r = client.post("/console/login", data={**form, "csrf": older}, follow_redirects=False)
    assert r.status_code == 400
    assert "The sign-in page was out of date: try again." in r.text
    assert 'role="alert">Unknown user' not in r.text
    assert "sw_session" not in r.headers.get("set-cookie", "")
    fresh = token(r.text)
    assert fresh != older
    r = client.post("/console/login", data={**form, "csrf": fresh}, follow_redirects=False)
    assert r.status_code == 303 and "sw_session" in r.headers["set-cookie"]
