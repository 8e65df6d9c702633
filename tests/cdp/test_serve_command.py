"""`cdp serve`'s operator mistakes are one line, before any server starts."""

from __future__ import annotations

import socket

from typer.testing import CliRunner

from cdp.cli import app


def test_a_busy_port_is_one_line_naming_it(trained_shop):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "--config", str(trained_shop.config), "--port", str(port)],
                                    env={"COLUMNS": "400", "MLFLOW_TRACKING_URI": trained_shop.tracking_uri})
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [f"error: --port {port}: 127.0.0.1:{port} is in use by another program; stop it or pick another "
                     "port with --port"], result.output
