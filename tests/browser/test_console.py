"""The console in Debian's Chromium: a dispatcher signs in, an alarm published over MQTT shows in
the queue within a second with its sound cue, she opens the map and acknowledges, and the device
receives `acknowledged`; a dispatcher of another region sees nothing of it. An offender's release
from detention shows as a case notice to the dispatcher of the case's home region and the police
of its home unit, on the page they have open and on every page they open while the release
tightens the case. An alert whose console event was lost still shows at the queue's next read,
sooner while the stream says events may not arrive, and at once when it asks to read again. The
alert page follows its alert while it is open: positions, state and timeline. An alert that
escalates is marked on the queue and the alert page and sounds again until it is
acknowledged."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select

from backend.alerts.models import Alert
from backend.audit.models import AuditEntry
from backend.auth.users import add_user
from backend.cases.models import Case
from backend.console.clock import local_time
from backend.devices.models import Device, Ping
from backend.escalation.loop import EscalationLoop
from backend.hub.bus import STREAM_DELAYED, STREAM_RESYNC
from device_protocol import Alarm, Fix, codec
from tests.backend.measures.places import zone_feature
from tests.browser.conftest import ARTIFACTS
from tests.support.mqtt import publish
from tests.support.waiting import wait_until
from tests.support.webhooks import receivers, subscribe, webhooks  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.services]

ROTTERDAM_CS = (51.9244, 4.4690)  # VR17 Rotterdam-Rijnmond, police unit RE07
PASSWORD = "correct horse battery"


def _seed(stack) -> None:
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
        add_user(s, "amsterdam", PASSWORD, "dispatcher", {"regions": ["VR13"]})
        case = Case(reference="C-BROWSER-1", home_police_unit="RE07", home_vr_code="VR17",
                    risk_level="high", custody_status="released",
                    safety_plan="Code word: tulip. Safe address known to the police.")
        s.add(case)
        s.flush()
        s.add(Device(id="vic-web-1", case_id=case.id, role="victim", online=True, battery=81))
        s.add(Device(id="off-web-1", case_id=case.id, role="offender", online=True, battery=64))


def _add_case(stack, reference: str, custody_status: str, roles: dict[str, str]):
    """Another case homed in VR17 (unit RE07) with these devices (id -> role); its id."""
    with stack.runtime.sessions.begin() as s:
        case = Case(reference=reference, home_police_unit="RE07", home_vr_code="VR17",
                    risk_level="high", custody_status=custody_status)
        s.add(case)
        s.flush()
        s.add_all(Device(id=d, case_id=case.id, role=role) for d, role in roles.items())
        return case.id


def _panic(stack, client, device_id: str, alarm_id: str) -> None:
    """The device presses panic at Rotterdam Centraal, with its fix."""
    publish(client, stack.topics.alarm(device_id), codec.encode(Alarm(
        id=alarm_id, kind="panic", tst=time.time(), lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1],
        acc=12.0)))


def _log_in(page, base: str, username: str) -> None:
    """Fill in and send the sign-in form on `page` (English)."""
    page.goto(f"{base}/console/login?lang=en")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#sign-in")


def _sign_in(browser, base: str, username: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    _log_in(page, base, username)
    page.wait_for_url(f"{base}/console/")
    page.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    return context, page


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_alarm_to_acknowledged_in_the_browser(stack, server, browser):
    _seed(stack)
    acks = stack.collector(stack.topics.ack("vic-web-1"))
    device = stack.device("vic-web-1")
    desk_context, desk = _sign_in(browser, server.base, "desk")
    other_context, other = _sign_in(browser, server.base, "amsterdam")
    assert desk.locator("[data-testid=who]").inner_text().startswith("user:desk")

    _panic(stack, device, "vic-web-1", "web-1")
    row = desk.wait_for_selector("#alert-queue tr.urgent[data-alert-id]", timeout=1_000)
    assert row is not None
    assert desk.evaluate("window.swAlarm.count") == 1
    assert desk.get_attribute("#alarm-sound", "data-played") == "1"
    assert desk.is_visible("#p1-banner")
    # The P1 timer runs.
    desk.wait_for_function(
        "() => document.querySelector('#alert-queue tr.urgent td.timer.running').textContent"
        " !== '00:00'", timeout=5_000)
    desk.screenshot(path=str(ARTIFACTS / "console-queue.png"), full_page=True)

    # The other region's dispatcher: no row, no alarm; and the alert page is not found for her.
    other.wait_for_timeout(500)
    assert other.locator("#alert-queue tr[data-alert-id]").count() == 0
    assert other.evaluate("window.swAlarm.count") == 0
    alert_id = row.get_attribute("data-alert-id")
    response = other.goto(f"{server.base}/console/alerts/{alert_id}")
    assert response is not None and response.status == 404
    other.goto(f"{server.base}/console/")
    other.wait_for_selector("#link-state[data-state=live]")
    other.screenshot(path=str(ARTIFACTS / "console-other-region.png"), full_page=True)

    # The alert view: map with the victim's position drawn as vector overlay (no tiles).
    desk.click(f"tr[data-alert-id='{alert_id}'] a.open")
    desk.wait_for_url(f"{server.base}/console/alerts/{alert_id}")
    desk.wait_for_function("() => window.swMap && window.swMap.drawn >= 1", timeout=5_000)
    assert desk.locator("#map path.leaflet-interactive").count() >= 2  # accuracy circle, marker
    assert "C-BROWSER-1" in desk.inner_text("#case-card")
    assert "tulip" in desk.inner_text("#case-card")
    assert desk.locator("#sop li").count() >= 3
    desk.screenshot(path=str(ARTIFACTS / "console-alert-map.png"), full_page=True)

    desk.fill("#note", "victim called back, on her way to the safe address")
    desk.click("#btn-acknowledge")
    desk.wait_for_selector("#alert-state[data-state=acknowledged]", timeout=5_000)
    states = [codec.decode_ack(p).state for _, p, _ in acks.wait_for(2)]
    assert states == ["received", "acknowledged"]
    desk.wait_for_load_state("load")
    desk.wait_for_timeout(600)
    assert "victim called back" in desk.inner_text(".timeline")
    desk.screenshot(path=str(ARTIFACTS / "console-acknowledged.png"), full_page=True)

    desk.goto(f"{server.base}/console/regions")
    assert desk.locator("figure.chart svg").count() == 4
    desk.screenshot(path=str(ARTIFACTS / "console-regions.png"), full_page=True)
    desk.goto(f"{server.base}/console/devices")
    assert desk.locator("#device-board tbody tr").count() == 2
    desk.screenshot(path=str(ARTIFACTS / "console-devices.png"), full_page=True)

    acks.close()
    device.disconnect()
    desk_context.close()
    other_context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_release_from_detention_is_a_case_notice(stack, server, browser):
    _seed(stack)
    case_id = _add_case(stack, "C-BROWSER-2", "in_custody",
                        {"off-web-2": "offender", "vic-web-2": "victim"})
    with stack.runtime.sessions.begin() as s:
        add_user(s, "agent", PASSWORD, "police", {"units": ["RE07"]})
    desk_context, desk = _sign_in(browser, server.base, "desk")
    other_context, other = _sign_in(browser, server.base, "amsterdam")
    police_context, police = _sign_in(browser, server.base, "agent")
    assert not desk.is_visible("#case-notices")
    queue_box = desk.locator("#alert-queue").bounding_box()

    released = datetime.now(UTC) - timedelta(hours=1)
    r = stack.api().patch(f"/api/v1/cases/{case_id}", json={
        "custody_status": "released", "released_at": released.isoformat()})
    assert r.status_code == 200, r.text

    item = desk.wait_for_selector(
        "#case-notice-list li[data-event='case.custody_released']", timeout=5_000)
    assert item is not None and desk.is_visible("#case-notices")
    assert "released from detention" in item.inner_text()
    # Beside the queue: its rows stay where the dispatcher's pointer is.
    assert desk.locator("#alert-queue").bounding_box() == queue_box
    notices_box = desk.locator("#case-notices").bounding_box()
    assert notices_box["x"] >= queue_box["x"] + queue_box["width"]
    # Its end, as every time on the console: in the console's zone, with the zone's name.
    with stack.runtime.sessions() as s:
        until = local_time(s.get(Case, case_id).custody_tightened_until,
                           tz=ZoneInfo(stack.runtime.settings.console.timezone))
    assert until.endswith((" CET", " CEST")) and until in item.inner_text()
    assert item.inner_text().count("C-BROWSER-2") == 1
    link = desk.locator("#case-notice-list li a")
    assert link.get_attribute("href") == f"/console/cases/{case_id}"
    desk.screenshot(path=str(ARTIFACTS / "console-case-notice.png"), full_page=True)

    # The police of the case's home unit: the notice, naming a case page they cannot open.
    seen = police.wait_for_selector(
        "#case-notice-list li[data-event='case.custody_released']", timeout=5_000)
    assert "C-BROWSER-2" in seen.inner_text() and until in seen.inner_text()
    assert police.locator("#case-notice-list li a").count() == 0
    assert police.locator("#case-notice-list li span.case-ref").count() == 1

    other.wait_for_timeout(500)  # the other region's dispatcher: no notice
    assert other.locator("#case-notice-list li").count() == 0
    assert not other.is_visible("#case-notices")

    # A console opened later shows the case while the release tightens it ...
    desk.reload()
    standing = desk.wait_for_selector(
        f"#case-notice-list li[data-standing][data-case-id='{case_id}']", timeout=5_000)
    assert standing is not None and "C-BROWSER-2" in standing.inner_text()
    assert until in standing.inner_text()  # the page says it as the live notice did
    other.reload()
    other.wait_for_selector("#link-state[data-state=live]")
    assert not other.is_visible("#case-notices")
    # A panic meanwhile: its case card says so too.
    _panic(stack, stack.device("vic-web-2"), "vic-web-2", "web-2")
    row = desk.wait_for_selector("#alert-queue tr.urgent[data-alert-id]", timeout=5_000)
    desk.goto(f"{server.base}/console/alerts/{row.get_attribute('data-alert-id')}")
    assert f"heightened alertness until {until}" in desk.inner_text("#case-card #tightened")
    desk.goto(f"{server.base}/console/")
    desk.wait_for_selector("#link-state[data-state=live]")
    # ... until the offender is back in custody: that notice replaces it.
    r = stack.api().patch(f"/api/v1/cases/{case_id}", json={"custody_status": "in_custody"})
    assert r.status_code == 200, r.text
    desk.wait_for_selector(
        "#case-notice-list li[data-event='case.custody_tightening_ended']", timeout=5_000)
    assert desk.locator("#case-notice-list li[data-standing]").count() == 0
    desk.click("#case-notice-list li a")
    desk.wait_for_url(f"{server.base}/console/cases/{case_id}")
    desk_context.close()
    other_context.close()
    police_context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_alert_whose_event_was_lost_shows_at_the_next_resync(stack, server, browser):
    """The fan-out of console events goes through Redis; should an event be lost (Redis
    away), the queue still shows the alert, and sounds it, at its next read of the open
    alerts, and drops it once it is closed. Here neither has any event at all."""
    _seed(stack)
    stack.runtime.settings.console.resync_s = 1.0
    desk_context, desk = _sign_in(browser, server.base, "desk")
    with stack.runtime.sessions.begin() as s:
        case = s.scalar(select(Case).where(Case.reference == "C-BROWSER-1"))
        alert = Alert(case_id=case.id, device_id="vic-web-1", message_id="lost-1", type="panic",
                      priority="P1", state="new", raised_at=datetime.now(UTC), flags=[],
                      police_unit="RE07", region={"vr_code": "VR17"})
        s.add(alert)
        s.flush()
        alert_id = str(alert.id)
    desk.wait_for_selector(f"#alert-queue tr[data-alert-id='{alert_id}']", timeout=5_000)
    assert desk.evaluate("window.swAlarm.alerts") == [alert_id]
    with stack.runtime.sessions.begin() as s:  # closed elsewhere, and that event lost too
        s.get(Alert, alert.id).state = "resolved"
    desk.wait_for_selector(f"#alert-queue tr[data-alert-id='{alert_id}']", state="detached",
                           timeout=5_000)
    desk_context.close()


def _add_lost_alert(stack, message_id: str) -> str:
    """An open P1 alert stored without any console event."""
    with stack.runtime.sessions.begin() as s:
        case = s.scalar(select(Case).where(Case.reference == "C-BROWSER-1"))
        alert = Alert(case_id=case.id, device_id="vic-web-1", message_id=message_id,
                      type="panic", priority="P1", state="new", raised_at=datetime.now(UTC),
                      flags=[], police_unit="RE07", region={"vr_code": "VR17"})
        s.add(alert)
        s.flush()
        return str(alert.id)


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_the_queue_says_when_it_is_delayed_and_reads_again_when_asked(stack, server, browser):
    """While the stream says events may not arrive (`stream.delayed`, here sent through the
    bus as the server's listener sends it), the queue says so and reads the open alerts every
    `delayed_resync_s`; `stream.resync` makes it live again and read them at once. The
    ordinary reread (`resync_s`) is five minutes away here."""
    _seed(stack)
    stack.runtime.settings.console.resync_s = 300.0
    stack.runtime.settings.console.delayed_resync_s = 1.0
    desk_context, desk = _sign_in(browser, server.base, "desk")
    stack.runtime.bus.publish(STREAM_DELAYED)
    desk.wait_for_selector("#link-state[data-state=delayed]", timeout=5_000)
    assert "delayed" in desk.text_content("#link-state")
    during = _add_lost_alert(stack, "lost-delayed")
    desk.wait_for_selector(f"#alert-queue tr[data-alert-id='{during}']", timeout=5_000)
    reads = desk.evaluate("window.swQueue.reads")
    stack.runtime.bus.publish(STREAM_RESYNC)
    desk.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    # The read the resync asked for, and any begun while delayed, are done before the next.
    desk.wait_for_function(
        f"() => window.swQueue.reads > {reads} && window.swQueue.pending === 0", timeout=5_000)
    after = _add_lost_alert(stack, "lost-after")
    time.sleep(2.5)  # live again: read no more than every resync_s
    assert desk.query_selector(f"#alert-queue tr[data-alert-id='{after}']") is None
    stack.runtime.bus.publish(STREAM_RESYNC)
    desk.wait_for_selector(f"#alert-queue tr[data-alert-id='{after}']", timeout=5_000)
    assert desk.evaluate("window.swAlarm.alerts") == [during, after]
    desk_context.close()


def _post(base: str, token: str, path: str, body: dict) -> dict:
    response = httpx.post(f"{base}{path}", json=body, timeout=10,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    return response.json()


# The page's visibility as the browser reports it when the tab goes to the background or back.
_SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_the_alert_page_follows_its_alert(stack, server, browser):
    """While the alert is open its page reads the positions again (the offender's new fix
    shows, with the distance), not while the tab is in the background, and shows what a
    colleague does through the API (state, timeline) without a reload; once the alert is
    resolved elsewhere, the positions are withheld (no other alert of the case is open) and
    no longer read."""
    _seed(stack)
    stack.runtime.settings.console.position_refresh_s = 1.0
    victim = stack.device("vic-web-1")
    offender = stack.device("off-web-1")
    _panic(stack, victim, "vic-web-1", "follow-1")

    def alert_id() -> str | None:
        with stack.runtime.sessions() as s:
            found = s.scalar(select(Alert.id).where(Alert.message_id == "follow-1"))
        return str(found) if found else None

    alert = wait_until(alert_id, timeout=10)
    with stack.runtime.sessions() as s:
        case_id = s.get(Device, "off-web-1").case_id
    home = {"type": "Feature", "id": "home-web", "geometry": {
                "type": "Point", "coordinates": [ROTTERDAM_CS[1] + 0.01, ROTTERDAM_CS[0]]},
            "properties": {"kind": "protected_place", "subject_device_ids": ["off-web-1"],
                           "radius_m": 250, "pre_alert_m": 0}}
    zones = {"type": "FeatureCollection", "features": [home, zone_feature(
        "off-web-1", centre=(ROTTERDAM_CS[0] - 0.02, ROTTERDAM_CS[1]), measure_id="zone-web")]}
    assert stack.api().post(f"/api/v1/cases/{case_id}/measures", json=zones).status_code == 201
    desk_context, desk = _sign_in(browser, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{alert}")
    desk.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    desk.wait_for_function("() => window.swMap.drawn === 1", timeout=5_000)  # the victim
    # The case's zones, read where the desk may read them (audited as measure reads).
    desk.wait_for_function("() => window.swMap.zones === 2", timeout=5_000)
    assert desk.text_content("#distance") == ""

    publish(offender, stack.topics.loc("off-web-1"), codec.encode(Fix(
        tst=time.time(), lat=ROTTERDAM_CS[0] + 0.003, lon=ROTTERDAM_CS[1], acc=8.0)))
    desk.wait_for_function("() => window.swMap.drawn === 2", timeout=5_000)
    assert "m" in desk.text_content("#distance")  # about 330 m
    # A tab in the background reads (and audits) no positions; back in front, it reads at once.
    desk.evaluate(_SET_VISIBILITY, "hidden")
    reads = desk.evaluate("window.swMap.reads")
    desk.wait_for_timeout(2_500)
    assert desk.evaluate("window.swMap.reads") == reads
    desk.evaluate(_SET_VISIBILITY, "visible")
    desk.wait_for_function(f"() => window.swMap.reads > {reads}", timeout=500)

    colleague = stack.token("dispatcher", {"regions": ["VR17"]})
    _post(server.base, colleague, f"/api/v1/alerts/{alert}/acknowledge",
          {"note": "colleague on the phone with her"})
    desk.wait_for_selector("#alert-state[data-state=acknowledged]", timeout=5_000)
    desk.wait_for_function(
        "() => document.querySelector('#timeline-list').textContent.includes('colleague on')",
        timeout=5_000)
    _post(server.base, colleague, f"/api/v1/alerts/{alert}/resolve", {"note": "safe"})
    desk.wait_for_selector("#alert-state[data-state=resolved]", timeout=5_000)
    desk.wait_for_selector("#reason-form:not([hidden])", timeout=5_000)
    assert desk.evaluate("window.swMap.drawn") == 0
    assert desk.evaluate("window.swMap.zones") == 0  # her home with her positions
    reads = desk.evaluate("window.swMap.reads")
    desk.wait_for_timeout(2_500)
    assert desk.evaluate("window.swMap.reads") == reads  # closed: read no more
    # A reload reads no zones without a reason; the reason she gives shows both again.
    desk.reload()
    desk.wait_for_selector("#reason-form:not([hidden])", timeout=5_000)
    desk.wait_for_timeout(500)
    assert desk.evaluate("window.swMap.zones") == 0
    desk.fill("#reason-form [name=reason]", "call back from the victim's lawyer")
    desk.click("#reason-form button")
    desk.wait_for_function("() => window.swMap.zones === 2 && window.swMap.drawn > 0",
                           timeout=5_000)
    with stack.runtime.sessions() as s:
        reasons = set(s.scalars(select(AuditEntry.reason).where(
            AuditEntry.resource == "measure", AuditEntry.reason.is_not(None))))
    assert reasons == {"call back from the victim's lawyer"}
    victim.disconnect()
    offender.disconnect()
    desk_context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_release_whose_notice_was_lost_shows_when_the_stream_asks_to_read_again(
        stack, server, browser):
    """The release's event never reached the console (here: none was sent); the queue's
    standing notices are read again on `stream.resync`, and the release shows."""
    _seed(stack)
    desk_context, desk = _sign_in(browser, server.base, "desk")
    assert not desk.is_visible("#case-notices")
    released = datetime.now(UTC) - timedelta(hours=1)
    with stack.runtime.sessions.begin() as s:
        case = s.scalar(select(Case).where(Case.reference == "C-BROWSER-1"))
        case.custody_status, case.released_at = "released", released
        case.custody_tightened_release = released
        case.custody_tightened_until = released + timedelta(hours=72)
        case_id, until = case.id, case.custody_tightened_until
    desk.wait_for_timeout(500)
    assert desk.locator("#case-notice-list li").count() == 0
    stack.runtime.bus.publish(STREAM_RESYNC)
    item = desk.wait_for_selector(
        f"#case-notice-list li[data-standing][data-case-id='{case_id}']", timeout=5_000)
    text = item.inner_text()
    assert "C-BROWSER-1" in text and "released from detention" in text
    assert local_time(until, tz=ZoneInfo(stack.runtime.settings.console.timezone)) in text
    assert desk.is_visible("#case-notices")
    stack.runtime.bus.publish(STREAM_RESYNC)  # read again: still one line for the case
    desk.wait_for_timeout(500)
    assert desk.locator(f"#case-notice-list li[data-case-id='{case_id}']").count() == 1
    desk_context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_new_p1_elsewhere_sounds_on_an_alert_page(stack, server, browser):
    """A dispatcher working one alarm hears a second victim's panic, and sees it named with
    the way to it; the page she works on stays as it was. A P1 whose event was lost sounds
    once the stream asks to read again; those open when the page came do not."""
    _seed(stack)
    _add_case(stack, "C-BROWSER-3", "released", {"vic-web-3": "victim"})
    first = _add_lost_alert(stack, "working-on")
    _add_lost_alert(stack, "already-open")  # open when the page comes: it does not sound
    desk_context, desk = _sign_in(browser, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{first}")
    desk.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    assert not desk.is_visible("#p1-banner")

    _panic(stack, stack.device("vic-web-3"), "vic-web-3", "elsewhere-1")
    desk.wait_for_selector("#p1-banner:not([hidden])", timeout=5_000)
    with stack.runtime.sessions() as s:
        second = str(s.scalar(select(Alert.id).where(Alert.message_id == "elsewhere-1")))
    assert desk.evaluate("window.swAlarm.alerts") == [second]
    assert desk.get_attribute("#p1-banner a", "href") == f"/console/alerts/{second}"
    assert "New P1 alarm" in desk.inner_text("#p1-banner")
    assert desk.get_attribute("#alert-view", "data-alert-id") == first
    # One whose event was lost sounds when the stream asks to read again.
    lost = _add_lost_alert(stack, "elsewhere-lost")
    desk.wait_for_timeout(500)
    assert desk.evaluate("window.swAlarm.alerts") == [second]
    stack.runtime.bus.publish(STREAM_RESYNC)
    desk.wait_for_function(f"() => window.swAlarm.alerts.includes('{lost}')", timeout=5_000)
    assert desk.evaluate("window.swAlarm.alerts") == [second, lost]
    desk_context.close()


def _escalation_mark(page, alert_id: str) -> str:
    mark = page.query_selector(f"#alert-queue tr[data-alert-id='{alert_id}'] .escalation-mark")
    return mark.inner_text() if mark else ""


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_escalation_is_marked_and_sounds_until_acknowledged(stack, server, browser):
    """A P1 nobody acknowledges is re-notified and escalated (the escalation loop, driven
    here with its clock): the queue marks it with the step and its target and sounds again at
    each step, the alert page shows it (and sounds for a step it had not heard), a queue
    opened later marks it from its read of the alerts, in Dutch too. Acknowledging ends the
    mark; a re-alert of the alert still unresolved is marked and sounds once more."""
    _seed(stack)
    stack.runtime.settings.console.resync_s = 1.0
    desk_context, desk = _sign_in(browser, server.base, "desk")
    _panic(stack, stack.device("vic-web-1"), "vic-web-1", "escalate-1")
    row = desk.wait_for_selector("#alert-queue tr.urgent[data-alert-id]", timeout=5_000)
    alert_id = row.get_attribute("data-alert-id")
    assert desk.evaluate("window.swAlarm.alerts") == [alert_id]
    assert _escalation_mark(desk, alert_id) == ""

    def followed_up() -> Alert | None:  # the worker's follow-up holds the row until then
        with stack.runtime.sessions() as s:
            alert = s.get(Alert, uuid.UUID(alert_id))
            return alert if alert.followed_up_at is not None else None

    raised_at = wait_until(followed_up, timeout=10).raised_at
    loop = EscalationLoop(stack.runtime)  # the console events go out as the loop's do
    assert loop.run_once(raised_at + timedelta(seconds=30)) == 1
    desk.wait_for_function(f"() => window.swAlarm.alerts.length === 2", timeout=5_000)
    assert desk.evaluate("window.swAlarm.alerts") == [alert_id, alert_id]
    assert _escalation_mark(desk, alert_id) == "re-notified: step 1, first recipients"

    page = desk_context.new_page()
    page.goto(f"{server.base}/console/alerts/{alert_id}")
    page.wait_for_selector("#escalation-mark:not([hidden])", timeout=5_000)
    assert page.inner_text("#escalation-mark") == "re-notified: step 1, first recipients"
    page.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    assert page.evaluate("window.swAlarm.alerts") == []  # the one she opened: heard already

    assert loop.run_once(raised_at + timedelta(seconds=45)) == 1
    step_2 = "escalated: step 2, desk supervisor"
    desk.wait_for_function(f"() => window.swAlarm.alerts.length === 3", timeout=5_000)
    assert _escalation_mark(desk, alert_id) == step_2
    page.wait_for_function(f"() => window.swAlarm.alerts.length === 1", timeout=5_000)
    assert page.inner_text("#escalation-mark") == step_2
    page.wait_for_function(
        "() => document.querySelector('#timeline-list').textContent.includes("
        f"'({step_2})')", timeout=5_000)
    desk.screenshot(path=str(ARTIFACTS / "console-escalated-queue.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / "console-escalated-alert.png"), full_page=True)
    # The queue's reads of the alerts (every resync_s here) do not sound it again.
    reads = desk.evaluate("window.swQueue.reads")
    desk.wait_for_function(f"() => window.swQueue.reads >= {reads + 2}", timeout=5_000)
    assert desk.evaluate("window.swAlarm.count") == 3

    # A queue opened now marks it from the alerts it reads, in the desk's language.
    later_context, later = _sign_in(browser, server.base, "desk")
    later.goto(f"{server.base}/console/?lang=nl")
    later.wait_for_selector(f"tr[data-alert-id='{alert_id}'] .escalation-mark", timeout=5_000)
    assert _escalation_mark(later, alert_id) == "geëscaleerd: stap 2, teamleider"
    assert later.evaluate("window.swAlarm.alerts") == [alert_id]  # once, not once per step
    later_context.close()

    page.click("#btn-acknowledge")
    page.wait_for_selector("#alert-state[data-state=acknowledged]", timeout=5_000)
    assert page.is_hidden("#escalation-mark")
    desk.wait_for_selector(f"tr[data-alert-id='{alert_id}'].state-acknowledged", timeout=5_000)
    assert _escalation_mark(desk, alert_id) == ""
    assert loop.run_once(raised_at + timedelta(seconds=90)) == 0  # acknowledged: no step

    with stack.runtime.sessions() as s:
        acknowledged_at = s.get(Alert, uuid.UUID(alert_id)).acknowledged_at
    assert loop.run_once(acknowledged_at + timedelta(seconds=600)) == 1  # still unresolved
    desk.wait_for_function(f"() => window.swAlarm.alerts.length === 4", timeout=5_000)
    re_alert = "re-alerted, not yet resolved: step 4, first recipients"
    assert _escalation_mark(desk, alert_id) == re_alert
    page.wait_for_function(f"() => window.swAlarm.alerts.length === 2", timeout=5_000)
    assert page.inner_text("#escalation-mark") == re_alert
    desk_context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_partner_adds_a_note_to_the_case_log_in_the_browser(stack, server, browser):
    """A partner organisation's contact person opens the case page of her case: its log, no
    alerts, and a note she adds is at the top of the log once it is saved."""
    case_id = _add_case(stack, "C-PARTNER-1", "in_custody", {"off-web-p": "offender"})
    with stack.runtime.sessions.begin() as s:
        add_user(s, "reclassering", PASSWORD, "partner", {"cases": ["C-PARTNER-1"]})
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    _log_in(page, server.base, "reclassering")
    page.wait_for_url(f"{server.base}/console/")
    # Her first page lists her cases (she reads no alert); one leads to its case log.
    assert page.inner_text("#case-list").count("C-") == 1
    page.click("#case-list a")
    page.wait_for_url(f"{server.base}/console/cases/{case_id}")
    assert page.locator("#case-alerts").count() == 0
    page.fill("#case-note", "Reclassering: meldplicht gewijzigd naar dinsdag.")
    page.click("#case-note-form button")
    page.wait_for_selector("#case-log tr[data-kind=note]", timeout=5_000)
    assert "Reclassering: meldplicht gewijzigd naar dinsdag." in page.inner_text(
        "#case-log tr:first-child")
    assert "user:reclassering" in page.inner_text("#case-log tr:first-child")
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_police_not_reached_stays_until_a_later_message_is_delivered(
        stack, server, browser, webhooks, receivers):  # noqa: F811
    """The police webhook is down: the P1's delivery runs out of time and the queue and the
    alert page say "police not reached". The dispatcher acknowledges: the acknowledgement's
    message to the police is only on its way, so the warning stays on both pages; once a later
    message (the dispatch's) is delivered, the warning goes."""
    _seed(stack)
    police = receivers(down=True)
    subscribe(stack.api(), police)
    queue_context, queue = _sign_in(browser, server.base, "desk")
    _panic(stack, stack.device("vic-web-1"), "vic-web-1", "police-down")
    row = queue.wait_for_selector("#alert-queue tr.urgent[data-alert-id]", timeout=5_000)
    alert_id = row.get_attribute("data-alert-id")
    page = queue_context.new_page()
    page.goto(f"{server.base}/console/alerts/{alert_id}")
    page.wait_for_selector("#police-delivery[data-police=unreachable] .police-alarm",
                           timeout=15_000)
    cell = f"#alert-queue tr[data-alert-id='{alert_id}'] td[data-police]"
    queue.wait_for_selector(f"{cell}.police-alarm", timeout=5_000)

    page.fill("#note", "police phoned? not yet")
    page.click("#btn-acknowledge")
    page.wait_for_selector("#alert-state[data-state=acknowledged]", timeout=5_000)
    page.wait_for_function(
        "() => document.querySelector('#timeline-list').textContent.includes('not yet')",
        timeout=5_000)
    queue.wait_for_selector(f"tr[data-alert-id='{alert_id}'].state-acknowledged",
                            timeout=5_000)
    with stack.runtime.sessions() as s:
        assert s.get(Alert, uuid.UUID(alert_id)).police_delivery == "unreachable"
    assert page.get_attribute("#police-delivery", "data-police") == "unreachable"
    assert page.is_visible("#police-delivery .police-alarm")
    assert queue.get_attribute(cell, "data-police") == "unreachable"

    police.down = False  # the police are back: the dispatch's message gets through
    page.click("#btn-dispatch")
    page.wait_for_selector("#police-delivery[data-police=delivered]", timeout=15_000)
    assert not page.is_visible("#police-delivery .police-alarm")
    queue.wait_for_selector(f"{cell}[data-police=delivered]", timeout=5_000)
    queue_context.close()


def _alert_id(stack, message_id: str) -> str:
    def found() -> str | None:
        with stack.runtime.sessions() as s:
            alert_id = s.scalar(select(Alert.id).where(Alert.message_id == message_id))
        return str(alert_id) if alert_id else None

    return wait_until(found, timeout=10)


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_position_shows_how_old_it_is_and_an_old_one_is_marked(stack, server, browser):
    """The offender's monitor last reported 12 minutes before the victim's panic: his marker
    says how long ago ("12 min ago") and that it is an old position; the victim's says its
    own age, unmarked; the distance says it is between positions of different times."""
    _seed(stack)
    offender = stack.device("off-web-1")
    for minutes, north in ((13, 0.002), (12, 0.001)):  # a trail, its last fix 12 min old
        publish(offender, stack.topics.loc("off-web-1"), codec.encode(Fix(
            tst=time.time() - minutes * 60, lat=ROTTERDAM_CS[0] + north, lon=ROTTERDAM_CS[1],
            acc=8.0)))
    wait_until(lambda: _fixes(stack, "off-web-1") == 2, timeout=10)
    _panic(stack, stack.device("vic-web-1"), "vic-web-1", "stale-offender")
    alert = _alert_id(stack, "stale-offender")
    context, desk = _sign_in(browser, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{alert}")
    desk.wait_for_function("() => window.swMap.drawn === 2", timeout=5_000)
    his = desk.inner_text(".leaflet-tooltip.fix-offender")
    assert "12 min ago" in his and "OLD POSITION" in his
    assert desk.locator(".leaflet-tooltip.fix-offender.fix-stale").count() == 1
    assert desk.locator("#map path.leaflet-interactive").count() >= 4  # his trail drawn too
    hers = desk.inner_text(".leaflet-tooltip.fix-victim")
    assert " s ago" in hers and "OLD POSITION" not in hers
    assert desk.locator(".leaflet-tooltip.fix-victim.fix-stale").count() == 0
    assert desk.get_attribute("#distance", "data-mixed-times") == "1"
    assert "positions of different times: victim " in desk.text_content("#distance")
    desk.screenshot(path=str(ARTIFACTS / "console-stale-offender.png"), full_page=True)
    context.close()


def _fixes(stack, device_id: str) -> int:
    with stack.runtime.sessions() as s:
        return len(s.scalars(select(Ping.fix_time).where(Ping.device_id == device_id)).all())


# Each play of a media element and how it ended, in the page's `data-plays` (read without
# `page.evaluate`, which counts as a user gesture and would let the page play sound).
_PLAYS = """(() => { const plays = [];
  const note = (what) => {
    plays.push(what); document.documentElement.dataset.plays = plays.join(","); };
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    const p = play.call(this);
    p.then(() => note("played"), (e) => note("refused " + e.name));
    return p;
  }; })();"""


def _plays(page) -> list[str]:
    return (page.get_attribute("html", "data-plays") or "").split(",")


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_sound_refused_by_the_browser_shows_a_banner_that_turns_it_on(
        stack, server, strict_browser):
    """A queue opened without a click of hers may not play sound (the browser's autoplay
    policy): the page says so in a banner at once, the P1 it finds cannot sound and the banner
    stays; her click on it plays the alarm and takes the banner away. (Playwright's reads of
    a page count as a user gesture: the page is not read until its alarm was refused.)"""
    _seed(stack)
    alert = _add_lost_alert(stack, "refused-1")
    context, _ = _sign_in(strict_browser, server.base, "desk")
    fresh = strict_browser.new_context()  # her session, no click on any page of it
    fresh.add_cookies(context.cookies())
    fresh.add_init_script(_PLAYS)
    desk = fresh.new_page()
    with desk.expect_response(lambda r: "/api/v1/alerts?state=open" in r.url):
        desk.goto(f"{server.base}/console/")
    time.sleep(1.0)  # the answer handled: the alarm tried (no read of the page before)
    assert _plays(desk) == ["refused NotAllowedError"] * 2  # the probe, the alarm
    assert desk.evaluate("window.swAlarm.alerts") == [alert]
    assert desk.is_visible("#sound-off")
    assert "click to turn the alarm sound on" in desk.inner_text("#sound-off")

    desk.click("#sound-off")
    desk.wait_for_selector("#sound-off", state="hidden", timeout=5_000)
    assert _plays(desk)[-1] == "played"
    fresh.close()
    context.close()


# The stream of the pages of a context, through Playwright: `held` keeps the server's events
# from the pages (as when they are lost), `send` gives them one of the stream's own.
class HeldStream:
    def __init__(self, context) -> None:
        import re

        self.held = False
        self.sockets = []
        context.route_web_socket(re.compile(r".*/api/v1/stream.*"), self._route)

    def _route(self, ws) -> None:
        server = ws.connect_to_server()
        server.on_message(lambda message: None if self.held else ws.send(message))
        self.sockets.append(ws)

    def send(self, event: dict) -> None:
        import json

        for ws in self.sockets:
            ws.send(json.dumps(event))


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_acting_on_an_alert_a_colleague_moved_says_so_and_keeps_the_note(
        stack, server, browser):
    """The buttons follow the alert's state. A colleague acknowledged the alert while this page
    did not hear of it: her acknowledgement changes nothing and the page says a colleague
    already did this (her note is on the timeline). The colleague resolves it, again
    unheard: her dispatch is refused, said in her language, and her typed note stays."""
    _seed(stack)
    alert = _add_lost_alert(stack, "race-1")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    stream = HeldStream(context)
    desk = context.new_page()
    _log_in(desk, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{alert}")
    desk.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    enabled = "() => !document.querySelector('#btn-acknowledge').disabled"
    desk.wait_for_function(enabled, timeout=5_000)
    assert desk.is_enabled("#btn-dispatch") and desk.is_enabled("#btn-resolve")

    colleague = stack.token("dispatcher", {"regions": ["VR17"]})
    stream.held = True
    _post(server.base, colleague, f"/api/v1/alerts/{alert}/acknowledge", {})
    desk.fill("#note", "victim safe with the neighbours")
    desk.click("#btn-acknowledge")
    desk.wait_for_selector("#action-info:not([hidden])", timeout=5_000)
    assert desk.inner_text("#action-info") == "A colleague already did this"
    assert desk.input_value("#note") == ""
    assert desk.get_attribute("#alert-state", "data-state") == "acknowledged"
    assert "victim safe" in desk.inner_text("#timeline-list li[data-kind=note]")
    assert desk.is_disabled("#btn-acknowledge") and desk.is_enabled("#btn-dispatch")

    _post(server.base, colleague, f"/api/v1/alerts/{alert}/resolve", {})
    desk.fill("#note", "unit sent")
    desk.click("#btn-dispatch")
    desk.wait_for_selector("#action-error:not([hidden])", timeout=5_000)
    assert desk.inner_text("#action-error") == (
        "Cannot dispatch: the alert has moved on (now: resolved).")
    assert desk.input_value("#note") == "unit sent"
    desk.wait_for_selector("#alert-state[data-state=resolved]", timeout=5_000)
    for button in ("acknowledge", "dispatch", "resolve", "false-alarm"):
        assert desk.is_disabled(f"#btn-{button}")
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_read_begun_before_an_alert_closed_does_not_bring_it_back(stack, server, browser):
    """The queue's read of the open alerts is on its way (held here) when a colleague
    resolves an alert: the event takes it off, and the read's older answer does not bring
    it back."""
    _seed(stack)
    stack.runtime.settings.console.resync_s = 1.0
    alert = _add_lost_alert(stack, "ghost-1")
    context, desk = _sign_in(browser, server.base, "desk")
    row = f"#alert-queue tr[data-alert-id='{alert}']"
    desk.wait_for_selector(row, timeout=5_000)
    desk.evaluate("""() => {
      const fetch = window.fetch;
      window.swHeld = [];
      window.fetch = (...args) => String(args[0]).includes("/api/v1/alerts?state=open")
        ? fetch(...args).then((r) => new Promise((ok) => window.swHeld.push(() => ok(r))))
        : fetch(...args);
    }""")
    desk.wait_for_function("() => window.swHeld.length > 0", timeout=5_000)
    colleague = stack.token("dispatcher", {"regions": ["VR17"]})
    _post(server.base, colleague, f"/api/v1/alerts/{alert}/resolve", {"note": "safe"})
    desk.wait_for_selector(row, state="detached", timeout=5_000)
    desk.evaluate("() => { window.swHeld.forEach((release) => release()); }")
    desk.wait_for_function("() => window.swQueue.pending === 0", timeout=5_000)
    assert desk.query_selector(row) is None
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_the_alert_page_reads_its_alert_again_while_the_stream_is_delayed(
        stack, server, browser):
    """While the stream says events may not arrive, the alert page reads its alert every
    `delayed_resync_s`: a change whose event was lost shows all the same."""
    _seed(stack)
    stack.runtime.settings.console.delayed_resync_s = 1.0
    alert = _add_lost_alert(stack, "delayed-page")
    context, desk = _sign_in(browser, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{alert}")
    desk.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    stack.runtime.bus.publish(STREAM_DELAYED)
    desk.wait_for_selector("#link-state[data-state=delayed]", timeout=5_000)
    with stack.runtime.sessions.begin() as s:  # dispatched elsewhere, its event lost
        s.get(Alert, uuid.UUID(alert)).state = "dispatched"
    desk.wait_for_selector("#alert-state[data-state=dispatched]", timeout=5_000)
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_closed_alerts_page_goes_to_sign_in_once_signed_out(stack, server, browser):
    """Signed out in another tab: the stream closes with 4401 and the page of a closed alert
    (which reads nothing more on its own) goes to sign-in instead of reconnecting for ever."""
    _seed(stack)
    stack.runtime.settings.api.stream_recheck_s = 0.5
    alert = _add_lost_alert(stack, "closed-page")
    with stack.runtime.sessions.begin() as s:
        s.get(Alert, uuid.UUID(alert)).state = "resolved"
    context, desk = _sign_in(browser, server.base, "desk")
    page = context.new_page()
    page.goto(f"{server.base}/console/alerts/{alert}")
    page.wait_for_selector("#link-state[data-state=live]", timeout=5_000)
    desk.click("header form button")  # sign out
    page.wait_for_url(f"{server.base}/console/login", timeout=10_000)
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_live_updates_keep_the_queue_rows_and_the_keyboard_focus(stack, server, browser):
    """A dispatcher has tabbed to an alert's link: updates of the queue (another alert
    acknowledged, a new one raised) keep its row and the focus on that link."""
    _seed(stack)
    first = _add_lost_alert(stack, "focus-1")
    other = _add_lost_alert(stack, "focus-2")
    context, desk = _sign_in(browser, server.base, "desk")
    link = f"#alert-queue tr[data-alert-id='{first}'] a.open"
    desk.wait_for_selector(f"#alert-queue tr[data-alert-id='{other}']", timeout=5_000)
    desk.focus(link)
    desk.evaluate(f"() => {{ document.querySelector(\"{link}\").closest('tr').swMark = 1; }}")
    colleague = stack.token("dispatcher", {"regions": ["VR17"]})
    _post(server.base, colleague, f"/api/v1/alerts/{other}/acknowledge", {})
    desk.wait_for_selector(f"tr[data-alert-id='{other}'].state-acknowledged", timeout=5_000)
    _panic(stack, stack.device("vic-web-1"), "vic-web-1", "focus-3")
    desk.wait_for_function("() => document.querySelectorAll('#alert-queue tbody tr').length === 3",
                           timeout=5_000)
    focused = desk.evaluate("() => [document.activeElement.className, "
                            "document.activeElement.closest('tr').dataset.alertId, "
                            "document.activeElement.closest('tr').swMark]")
    assert focused == ["open", first, 1]
    desk.keyboard.press("Enter")
    desk.wait_for_url(f"{server.base}/console/alerts/{first}")
    context.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_trail_shortened_by_another_alert_says_so_and_shows_more_with_a_reason(
    stack, server, browser
):
    """A low battery (P3) on the victim's button, open for three hours, while her panic (P1)
    is open: the P3's page shows her trail only from 15 minutes before the panic, says so, and
    shows the three hours once the dispatcher gives a reason, also at the page's next reads."""
    _seed(stack)
    stack.runtime.settings.console.position_refresh_s = 1.0
    now = datetime.now(UTC)
    with stack.runtime.sessions.begin() as s:
        case_id = s.get(Device, "vic-web-1").case_id
        s.add_all(Ping(device_id="vic-web-1", fix_time=now - timedelta(minutes=minutes),
                       received_at=now, lat=ROTTERDAM_CS[0] + minutes / 10_000,
                       lon=ROTTERDAM_CS[1], acc=10) for minutes in (170, 120, 60))
        battery = Alert(case_id=case_id, device_id="vic-web-1", message_id="battery-web",
                        type="battery_low", priority="P3", state="new",
                        raised_at=now - timedelta(hours=3), police_unit="RE07",
                        region={"vr_code": "VR17", "police_unit": "RE07"}, flags=[])
        s.add(battery)
    _panic(stack, stack.device("vic-web-1"), "vic-web-1", "panic-web-trail")
    _alert_id(stack, "panic-web-trail")
    context, desk = _sign_in(browser, server.base, "desk")
    desk.goto(f"{server.base}/console/alerts/{battery.id}")
    desk.wait_for_selector("#trail-clipped:not([hidden])", timeout=5_000)
    assert desk.is_hidden("#reason-form")
    drawn = desk.evaluate("() => window.swMap.reads")
    desk.click("#trail-more")
    assert desk.is_hidden("#trail-clipped") and desk.is_visible("#reason-form")
    desk.fill("#reason-form input[name=reason]", "battery complaint: her route today")
    desk.click("#reason-form button[type=submit]")
    desk.wait_for_function(f"() => window.swMap.reads > {drawn} + 2", timeout=10_000)
    assert desk.is_hidden("#trail-clipped")  # the refreshes read with the reason too
    with stack.runtime.sessions() as s:
        reasons = [e.reason for e in s.scalars(select(AuditEntry).where(
            AuditEntry.resource_id == str(battery.id), AuditEntry.resource == "trail")
            .order_by(AuditEntry.id))]
    assert reasons[-3:] == ["battery complaint: her route today"] * 3
    context.close()
