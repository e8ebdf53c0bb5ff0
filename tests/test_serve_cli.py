"""``brainfuse serve``: the README's first command starts the workbench on localhost."""

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _outward_address():
    """This machine's non-loopback IPv4 address, if it has one (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.254.254.254", 1))
            address = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_readme_main_command_serves_the_workbench():
    first = re.search(r"```bash\n(.*?)\n```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert first.strip() == "bash .ci/setup.sh && .venv/bin/brainfuse serve"
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "brainfuse_core.cli", "serve", "projects/cobahh.json", "--port", str(port)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.time() + 60, ""
        while time.time() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=20).read().decode()
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        assert "BrainFuse workbench" in page
        outside = _outward_address()
        if outside is not None:  # bound to localhost only: the machine's other address refuses
            with socket.socket() as sock:
                assert sock.connect_ex((outside, port)) != 0
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_serve_refuses_a_broken_project_in_one_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "brainfuse-project", "version": 1}')
    done = subprocess.run([sys.executable, "-m", "brainfuse_core.cli", "serve", str(bad), "--port", str(_free_port())],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and done.stderr.startswith("error: cells: missing")


def test_serve_rejects_a_bad_port():
    done = subprocess.run([sys.executable, "-m", "brainfuse_core.cli", "serve", "--port", "70000"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "a port is 1..65535" in done.stderr
