"""`schildwacht simulate ...` hands every argument after `simulate` to the simulator."""

from __future__ import annotations

from backend.cli import main


def test_simulate_passes_options_through(capsys) -> None:
    assert main(["--log-level", "WARNING", "simulate", "--list"]) == 0
    assert "zone_breach" in capsys.readouterr().out


def test_simulate_reports_a_refused_option_of_its_own(capsys) -> None:
    assert main(["simulate", "--scenario", "nope"]) == 2
    assert "unknown scenario" in capsys.readouterr().out
