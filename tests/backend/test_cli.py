"""The command line's own decisions (the commands themselves run in test_cli_processes.py)."""

from __future__ import annotations

import pytest

from backend.cli import application_name, build_parser


@pytest.mark.parametrize(("argv", "name"), [
    (["ingest", "--channels", "alarm"], "schildwacht ingest alarm"),
    (["ingest"], "schildwacht ingest"),
    (["api"], "schildwacht api"),
    (["loops"], "schildwacht loops"),
])
def test_each_command_names_its_database_connections(argv, name):
    assert application_name(build_parser().parse_args(argv)) == name
