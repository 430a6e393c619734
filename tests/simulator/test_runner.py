import io

import pytest
from rich.console import Console

from device_protocol import Ack, Topics, codec
from simulator import runner, scenarios
from simulator.device import MessageKind
from simulator.runner import (
    Pacer,
    RaisedAlert,
    build_fleet,
    main,
    match_alerts,
    run_fleet,
    run_scenario,
    start_epoch_for,
)
from simulator.scenarios import ExpectedAlert
from simulator.transport import RecordingTransport

QUIET = Console(quiet=True)


def test_match_alerts_counts_latency_and_unexpected() -> None:
    expected = [
        ExpectedAlert("panic", "v1", trigger=3),
        ExpectedAlert("zone_breach", "o1", min_count=0, max_count=1),
        ExpectedAlert("proximity", "o1"),
    ]
    raised = [
        RaisedAlert("panic", "v1", raised_at=100.001, seen_at=100.010),
        RaisedAlert("zone_breach", "o1", raised_at=100.5),
        RaisedAlert("zone_breach", "o1", raised_at=101.5),  # flapping: one too many
        RaisedAlert("battery_low", "v1"),  # not expected
        RaisedAlert("panic", "someone-else"),  # not ours: ignored
    ]
    matches, unexpected = match_alerts(expected, raised, {"v1", "o1"}, {3: 100.0}, {})
    panic, breach, proximity = matches
    assert panic.ok and panic.latency_s == pytest.approx(0.010)
    assert not breach.ok and len(breach.raised) == 2 and breach.latency_s is None
    assert not proximity.ok and proximity.raised == ()
    assert [a.type for a in unexpected] == ["battery_low"]


def test_match_alerts_prefers_the_alarm_ref_for_latency() -> None:
    expected = [ExpectedAlert("panic", "v1", trigger=0)]
    raised = [
        RaisedAlert("panic", "v1", raised_at=50.1, ref="a-1", flags=("late",), seen_at=50.2)
    ]
    (match,), _ = match_alerts(expected, raised, {"v1"}, {0: 10.0}, {("v1", "a-1"): 50.0})
    assert match.latency_s == pytest.approx(0.2)
    assert match.missing_flags == ()
    (flagless,), _ = match_alerts(
        [ExpectedAlert("panic", "v1", flags=("clock_skew",))], raised, {"v1"}, {}, {}
    )
    assert flagless.missing_flags == ("clock_skew",)


def test_latency_ends_at_the_sighting_not_at_the_backends_receipt_time() -> None:
    # The backend's raised_at is when it received the alarm, before the alert was stored and
    # sent on: no latency can be taken from it.
    expected = [ExpectedAlert("panic", "v1", trigger=0)]
    unseen = [RaisedAlert("panic", "v1", raised_at=10.001, ref="a-1")]
    (match,), _ = match_alerts(expected, unseen, {"v1"}, {0: 10.0}, {("v1", "a-1"): 10.0})
    assert match.ok and match.latency_s is None
    seen = [
        RaisedAlert("panic", "v1", ref="a-1", seen_at=10.9),
        RaisedAlert("panic", "v1", ref="a-1", seen_at=10.4),
    ]
    (match,), _ = match_alerts(expected, seen, {"v1"}, {0: 10.0}, {("v1", "a-1"): 10.0})
    assert match.latency_s == pytest.approx(0.4)  # the first sighting


class _SlowAckTransport(RecordingTransport):
    """Each publish takes a second of the fake clock, as a wait for the broker's PUBACK."""

    def __init__(self, now: list[float]) -> None:
        super().__init__(clock=lambda: now[0])
        self.now = now

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        super().publish(topic, payload, qos)
        self.now[0] += 1.0


def test_latency_starts_before_the_publish_waits_for_its_puback() -> None:
    now = [100.0]
    scenario = scenarios.build("panic", 0)
    summary = runner.Summary("panic", 0, 1, scenario.duration_s, expected=scenario.expected)
    publisher = runner._Publisher(_SlowAckTransport(now), summary, clock=lambda: now[0])
    alarm_index = next(
        i for i, m in enumerate(scenario.messages) if m.kind is MessageKind.ALARM
    )
    publisher.send(scenario.messages[alarm_index], alarm_index)
    alarm = scenario.messages[alarm_index]
    assert publisher.trigger_times == {alarm_index: 100.0}
    assert publisher.ref_times == {(alarm.device_id, alarm.ref): 100.0}


def test_an_alert_without_its_expected_flag_does_not_match() -> None:
    expected = [ExpectedAlert("panic", "v1", flags=("clock_skew",))]
    late = [RaisedAlert("panic", "v1", flags=("late",))]
    (match,), _ = match_alerts(expected, late, {"v1"}, {}, {})
    assert not match.ok and match.missing_flags == ("clock_skew",)
    (match,), _ = match_alerts(
        expected, [RaisedAlert("panic", "v1", flags=("clock_skew", "late"))], {"v1"}, {}, {}
    )
    assert match.ok


def test_main_fails_a_run_whose_alert_lacks_its_flag() -> None:
    scenario = scenarios.build("clock_skew", 0)
    victim = scenario.devices[0].device_id
    out = io.StringIO()
    code = main(
        ["--scenario", "clock_skew", "--speed", "0", "--alert-wait", "0.2"],
        transport_factory=lambda a: RecordingTransport(),
        alert_source=lambda: [RaisedAlert("panic", victim, flags=("late",))],
        console=Console(file=out, width=160),
    )
    assert code == 1
    assert "missing flags clock_skew" in out.getvalue()


def test_a_scenario_is_never_replayed_faster_than_it_can_be_judged() -> None:
    assert runner.replay_speed(0, None) == 0
    assert runner.replay_speed(50, None) == 50
    assert runner.replay_speed(0, 300) == 300
    assert runner.replay_speed(1_000, 300) == 300
    assert runner.replay_speed(10, 300) == 10
    assert scenarios.build("clock_skew").max_speed == scenarios.CLOCK_SKEW_MAX_SPEED
    assert scenarios.build("panic").max_speed is None


def test_pacer_waits_for_simulated_time_at_speed() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(10.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait_until(50.0)
    pacer.wait_until(20.0)  # already past: no sleep
    assert slept == [pytest.approx(5.0)]
    Pacer(0.0, clock=lambda: 0.0, sleep=sleep).wait_until(1e9)
    assert len(slept) == 1
    with pytest.raises(ValueError):
        Pacer(-1.0)


def test_start_epoch_never_stamps_the_future() -> None:
    assert start_epoch_for(600, 1.0, 1_000_000.0) == 1_000_000.0
    assert start_epoch_for(600, 10.0, 1_000_000.0) == pytest.approx(1_000_000.0 - 540.0)
    assert start_epoch_for(600, 0.0, 1_000_000.0) == 1_000_000.0 - 600
    assert start_epoch_for(600, 0.5, 1_000_000.0) == 1_000_000.0


def test_run_scenario_publishes_the_timeline_and_matches_alerts() -> None:
    transport = RecordingTransport()
    topics = Topics("sim/x")
    scenario = scenarios.build("panic", 2, scenarios.DEFAULT_START, topics)
    victim = scenario.devices[0].device_id
    raised = [RaisedAlert("panic", victim, raised_at=None)]
    summary = run_scenario(
        "panic",
        transport,
        topics,
        seed=2,
        speed=0,
        alert_source=lambda: raised,
        start_epoch=scenarios.DEFAULT_START,
        console=QUIET,
    )
    assert [(p.topic, p.payload, p.qos) for p in transport.published] == [
        (m.topic, m.payload, m.qos) for m in scenario.messages
    ]
    assert summary.sent_by_kind["alarm"] == 2
    assert summary.messages_sent == len(scenario.messages)
    assert summary.ok and summary.matches is not None and summary.matches[0].ok


def test_run_scenario_fails_on_a_duplicate_alert() -> None:
    scenario = scenarios.build("panic", 0)
    victim = scenario.devices[0].device_id
    duplicate = [RaisedAlert("panic", victim), RaisedAlert("panic", victim)]
    summary = run_scenario(
        "panic", RecordingTransport(), seed=0, alert_source=lambda: duplicate, console=QUIET
    )
    assert not summary.ok


def test_default_start_is_anchored_to_now() -> None:
    transport = RecordingTransport()
    run_scenario("clock_skew", transport, seed=0, speed=0, console=QUIET)
    last_status = [p for p in transport.published if p.topic.endswith("/status")][-1]
    tst = codec.decode_status(last_status.payload).tst
    # Replayed at full speed, the 180 s scenario is anchored to end now; its only status is sent
    # at t=0 by a clock two hours behind.
    assert tst == pytest.approx(last_status.at - 180 - 7_200, abs=5)


def test_fleet_is_seeded_and_expects_each_panic_press() -> None:
    def make():
        return build_fleet(
            seed=4,
            victims=20,
            offenders=10,
            duration_s=3_600,
            start_epoch=scenarios.DEFAULT_START,
            topics=Topics(),
            panic_per_device_hour=0.5,
        )

    fleet = make()
    assert len(fleet.devices) == 30
    assert [d.device_id for d in fleet.devices] == [d.device_id for d in make().devices]
    assert fleet.expected and all(e.type == "panic" for e in fleet.expected)
    victims = {i.device_id for i in fleet.infos if i.role.value == "victim"}
    assert {e.device_id for e in fleet.expected} <= victims


def test_run_fleet_sends_fixes_and_statuses_from_every_device() -> None:
    transport = RecordingTransport()
    summary = run_fleet(
        transport,
        seed=1,
        victims=5,
        offenders=5,
        duration_s=600,
        speed=0,
        panic_per_device_hour=2.0,
        console=QUIET,
    )
    topics = Topics()
    senders = {topics.parse(p.topic).device_id for p in transport.published}
    assert len(senders) == 10
    # Victims report every 60 s and offenders every 30 s, for ten minutes.
    assert 140 <= summary.sent_by_kind[MessageKind.FIX.value] <= 160
    assert summary.sent_by_kind["alarm"] >= len(summary.expected)
    for p in transport.published:
        if p.topic.endswith("/loc"):
            assert codec.decode_fixes(p.payload)


def test_main_runs_scenarios_and_prints_tables() -> None:
    transport = RecordingTransport()
    out = io.StringIO()
    code = main(
        ["--scenario", "all", "--speed", "0", "--topic-root", "sim/cli"],
        transport_factory=lambda args: transport,
        console=Console(file=out, width=160),
    )
    assert code == 0 and transport.closed
    text = out.getvalue()
    assert "Messages sent" in text and "Alerts" in text
    for name in scenarios.SCENARIOS:
        assert f"{name} #0" in text
    assert all(p.topic.startswith("sim/cli/dev/") for p in transport.published)


def test_main_fleet_and_bad_input() -> None:
    transport = RecordingTransport()
    quiet = Console(file=io.StringIO())
    assert (
        main(
            ["--devices", "4", "--duration", "120", "--speed", "0"],
            transport_factory=lambda args: transport,
            console=quiet,
        )
        == 0
    )
    assert {p.topic.split("/")[3] for p in transport.published} == {
        "sim-fleet-0-v00000",
        "sim-fleet-0-v00001",
        "sim-fleet-0-o00000",
        "sim-fleet-0-o00001",
    }
    assert (
        main(
            ["--scenario", "nope"], transport_factory=lambda a: RecordingTransport(), console=quiet
        )
        == 2
    )
    assert main(["--list"], console=quiet) == 0


@pytest.mark.parametrize(
    "options",
    [
        ["--devices", "100000"],
        ["--duration", "1e9"],
        ["--duration", "nan"],
        ["--speed", "-1"],
        ["--panic-rate", "1e6"],
        ["--inflight", "0"],
        ["--alert-wait", "1e6", "--scenario", "panic"],
    ],
)
def test_an_unbounded_run_is_refused_before_anything_is_sent(options: list[str]) -> None:
    opened: list[object] = []
    out = io.StringIO()

    def factory(args) -> RecordingTransport:
        opened.append(args)
        return RecordingTransport()

    code = main(options, transport_factory=factory, console=Console(file=out, width=160))
    assert code == 2 and opened == []
    assert "must be" in out.getvalue()


def test_main_exit_code_reflects_missing_alerts() -> None:
    quiet = Console(file=io.StringIO())
    code = main(
        ["--scenario", "panic", "--speed", "0", "--alert-wait", "0.2"],
        transport_factory=lambda a: RecordingTransport(),
        alert_source=list,
        console=quiet,
    )
    assert code == 1


class _AckingTransport(RecordingTransport):
    """A broker-and-backend stand-in: acks every alarm at once through the downlink handler."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: list[tuple[str, object]] = []

    def subscribe(self, topic_filter: str, handler) -> None:
        self.handlers.append((topic_filter, handler))

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        super().publish(topic, payload, qos)
        parsed = Topics().parse(topic)
        if parsed.channel.value == "alarm":
            alarm = codec.decode_alarm(payload)
            ack = codec.encode(Ack(ref=alarm.id, state="received", tst=alarm.tst or 0.0))
            for topic_filter, handler in self.handlers:
                if topic_filter.endswith("/ack"):
                    handler(Topics().ack(parsed.device_id), ack)


def test_fleet_feeds_acks_back_so_acked_alarms_are_not_retransmitted() -> None:
    transport = _AckingTransport()
    summary = run_fleet(
        transport,
        seed=2,
        victims=6,
        offenders=0,
        duration_s=1_800,
        speed=0,
        panic_per_device_hour=2.0,
        console=QUIET,
    )
    assert sorted(f for f, _ in transport.handlers) == ["sd/v1/dev/+/ack", "sd/v1/dev/+/cmd"]
    alarms = [
        codec.decode_alarm(p.payload).id for p in transport.published if p.topic.endswith("/alarm")
    ]
    presses = sum(e.min_count for e in summary.expected)
    assert presses > 0 and len(alarms) == presses == len(set(alarms))
