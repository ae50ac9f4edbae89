"""`hes-sim broker`: the config it writes, the errors a user can cause, and the real thing end to end.

The unit tests open no sockets and need no ActiveMQ: stand-in launchers (shell scripts) play a
broker that fails, hangs or ignores SIGTERM. The test marked integration runs the command in a
subprocess against the real `activemq` package (skipped without it, failed under CI).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from lxml import etree

import simulator.broker as broker_module
from simulator.broker import Broker, Runtime, find_java, find_runtime, jvm_options
from simulator.cli import build_parser, main
from simulator.errors import SimulatorError
from simulator.transports.jms import JmsConnection, JmsMessage
from tests.integration.broker import require_activemq

REPO = Path(__file__).resolve().parents[1]
AMQ = "{http://activemq.apache.org/schema/core}"


def fake_runtime(tmp_path: Path, script: str) -> Runtime:
    """A stand-in launcher: a shell script run instead of the activemq package's."""
    launcher = tmp_path / "fake-activemq"
    launcher.write_text("#!/bin/sh\n" + script)
    launcher.chmod(0o755)
    return Runtime(str(launcher), "/usr/lib/jvm/some-jdk/bin/java")


def no_socket_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Broker, "_refuse_if_taken", lambda self: None)
    monkeypatch.setattr(broker_module, "stomp_ready", lambda host, port, timeout=2.0: False)


def group_alive(pgid: int) -> bool:
    """Any live process left in the group (zombies do not count: PID 1 of a container may not reap)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            return True
    return False


# ------------------------------------------------------------------------------- config


def test_config_listens_where_asked_and_keeps_everything_under_the_directory(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "b", host="127.0.0.2", stomp_port=7613, openwire_port=7616)
    config = etree.parse(str(broker.write_config()))

    uris = {c.get("name"): c.get("uri") for c in config.iter(f"{AMQ}transportConnector")}
    assert uris == {"openwire": "tcp://127.0.0.2:7616", "stomp": "stomp://127.0.0.2:7613"}
    node = config.find(f"{AMQ}broker")
    assert node is not None and node.get("useJmx") == "false" and node.get("persistent") == "true"
    assert config.find(f".//{AMQ}kahaDB").get("directory") == str(tmp_path / "b" / "data" / "kahadb")
    assert "jetty" not in (tmp_path / "b" / "conf" / "activemq.xml").read_text()  # no web console
    log4j = (tmp_path / "b" / "conf" / "log4j.properties").read_text()
    assert f"log4j.appender.file.File={tmp_path / 'b' / 'activemq.log'}\n" in log4j
    assert (broker.stomp_port, broker.openwire_port, broker.data_dir) == (7613, 7616, tmp_path / "b" / "data")


def test_an_ipv6_host_is_bracketed_and_a_wildcard_is_reached_on_loopback(tmp_path: Path) -> None:
    v6 = Broker(tmp_path / "v6", host="::", stomp_port=7613, openwire_port=7616)
    uris = [c.get("uri") for c in etree.parse(str(v6.write_config())).iter(f"{AMQ}transportConnector")]
    assert uris == ["tcp://[::]:7616", "stomp://[::]:7613"]
    assert v6.connect_host == "::1"
    assert Broker(tmp_path / "v4", host="0.0.0.0", stomp_port=1, openwire_port=2).connect_host == "127.0.0.1"


def test_environment_points_the_launcher_at_our_directory_java_and_user(tmp_path: Path) -> None:
    import pwd

    broker = Broker(tmp_path, stomp_port=7613, openwire_port=7616, heap="1g")
    env = broker.environment(Runtime("/usr/bin/activemq", "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"))
    assert env["JAVA_HOME"] == "/usr/lib/jvm/java-17-openjdk-amd64"
    assert env["JAVACMD"] == "/usr/lib/jvm/java-17-openjdk-amd64/bin/java"
    for key, value in (("ACTIVEMQ_BASE", tmp_path), ("ACTIVEMQ_CONF", tmp_path / "conf"),
                       ("ACTIVEMQ_DATA", tmp_path / "data"), ("ACTIVEMQ_TMP", tmp_path / "tmp")):
        assert env[key] == str(value)
    assert Path(env["ACTIVEMQ_PIDFILE"]).parent == tmp_path
    assert env["ACTIVEMQ_USER"] == pwd.getpwuid(os.getuid()).pw_name  # or, as root, the launcher would `su`
    assert "-Xmx1g" in env["ACTIVEMQ_DEBUG_OPTS"].split()


def test_heap_sizes() -> None:
    assert "-Xmx256m" in jvm_options().split()
    assert "-Xmx2G" in jvm_options("2G").split()
    for bad in ("12m", "256", "lots", "-1m", "256mb"):
        with pytest.raises(ValueError, match="heap"):
            jvm_options(bad)


def test_a_directory_the_launcher_would_split_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match="spaces or shell characters"):
        Broker(tmp_path / "my broker", stomp_port=1, openwire_port=2)


# ------------------------------------------------------------------------------- what the machine lacks


def test_missing_activemq_is_one_line_saying_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setattr(broker_module, "_LAUNCHERS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorError) as err:
        find_runtime()
    assert str(err.value) == "ActiveMQ is not installed: apt-get install -y activemq"


def test_missing_java_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    Path(fake_runtime(tmp_path, "exit 0\n").launcher).rename(tmp_path / "activemq")  # on PATH; no `java`
    monkeypatch.setattr(broker_module, "_LAUNCHERS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SimulatorError, match=r"^no Java runtime .*apt-get install") as err:
        find_runtime()
    assert "\n" not in str(err.value)


def test_java_home_comes_from_the_real_java_binary_not_default_java(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    real = tmp_path / "jvm" / "java-17" / "bin" / "java"
    real.parent.mkdir(parents=True)
    real.write_text("#!/bin/sh\n")
    real.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").symlink_to(real)  # as /usr/bin/java -> /etc/alternatives/java -> ...
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    assert find_java() == str(real)
    env = Broker(tmp_path / "b", stomp_port=1, openwire_port=2).environment(Runtime("/x/activemq", str(real)))
    assert env["JAVA_HOME"] == str(tmp_path / "jvm" / "java-17")


def test_the_command_reports_a_missing_package_in_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(broker_module, "_LAUNCHERS", ())
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["broker", "--dir", str(tmp_path / "b")]) == 1
    assert capsys.readouterr().err == "hes-sim: error: ActiveMQ is not installed: apt-get install -y activemq\n"


# ------------------------------------------------------------------------------- the command line


def test_command_defaults_and_options() -> None:
    args = build_parser().parse_args(["broker"])
    assert (args.dir, args.host, args.stomp_port, args.openwire_port, args.heap) == \
        ("hes-sim-data/broker", "127.0.0.1", 61613, 61616, "256m")
    assert args.func is broker_module.run_broker
    args = build_parser().parse_args(["broker", "--dir", "x", "--host", "0.0.0.0", "--stomp-port", "0",
                                      "--openwire-port", "7000", "--heap", "1g"])
    assert (args.dir, args.host, args.stomp_port, args.openwire_port, args.heap) == ("x", "0.0.0.0", 0, 7000, "1g")


def test_a_bad_heap_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["broker", "--heap", "32"])
    assert exit_.value.code == 2
    assert "--heap" in capsys.readouterr().err


# ------------------------------------------------------------------------------- start and stop, with stand-ins


def test_a_launcher_that_dies_gives_one_line_then_its_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_socket_checks(monkeypatch)
    runtime = fake_runtime(tmp_path, "echo 'INFO: Using java'\n"
                                     "echo 'Caused by: java.net.BindException: Address already in use'\n"
                                     "printf '\\tat org.apache.activemq.Some.frame(Some.java:1)\\n'\nexit 1\n")
    broker = Broker(tmp_path / "b", stomp_port=7613, openwire_port=7616, runtime=runtime)
    with pytest.raises(SimulatorError) as err:
        broker.start(timeout=20)
    first, *rest = str(err.value).splitlines()
    assert first == "ActiveMQ could not start: a port is already in use"
    assert "Caused by: java.net.BindException: Address already in use" in rest
    assert not any(line.startswith("\tat ") for line in rest)  # stack frames left out
    assert broker.pid is None


def test_a_start_that_never_answers_times_out_and_leaves_no_process(monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    no_socket_checks(monkeypatch)
    script = f"echo $$ > {tmp_path}/pgid\necho starting\nsleep 60 &\nwait\n"
    broker = Broker(tmp_path / "b", stomp_port=7613, openwire_port=7616, runtime=fake_runtime(tmp_path, script))
    began = time.monotonic()
    with pytest.raises(SimulatorError, match=r"^ActiveMQ did not answer STOMP on 127.0.0.1:7613 within 0.5 s\n"):
        broker.start(timeout=0.5)
    assert not group_alive(int((tmp_path / "pgid").read_text()))
    assert time.monotonic() - began < 5  # SIGTERM reached the launcher's children: no wait for the SIGKILL
    assert broker.pid is None
    assert "starting" in broker.tail()


def test_stop_ends_the_whole_group_and_kills_what_ignores_sigterm(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """The launcher's shell dies at SIGTERM while the JVM goes on: stop waits for every member."""
    no_socket_checks(monkeypatch)
    monkeypatch.setattr(broker_module, "stomp_ready", lambda host, port, timeout=2.0: True)
    script = "sh -c \"trap '' TERM; sleep 60 & wait\" &\nwait\n"  # a child that shrugs SIGTERM off
    broker = Broker(tmp_path / "b", stomp_port=7613, openwire_port=7616, runtime=fake_runtime(tmp_path, script))
    broker.start(timeout=10)
    pgid = broker.pid
    assert pgid is not None and group_alive(pgid)
    time.sleep(0.2)  # let the child install its trap
    began = time.monotonic()
    broker.stop(timeout=0.5)
    assert not group_alive(pgid)
    assert time.monotonic() - began < 5


def test_abort_during_start_stops_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_socket_checks(monkeypatch)
    broker = Broker(tmp_path / "b", stomp_port=7613, openwire_port=7616,
                    runtime=fake_runtime(tmp_path, "sleep 60 &\nwait\n"))
    calls = []

    def abort() -> bool:
        calls.append(broker.pid)
        return len(calls) > 2

    broker.start(timeout=20, abort=abort)
    pgid = calls[0]
    assert pgid is not None and not group_alive(pgid) and broker.pid is None


# ------------------------------------------------------------------------------- the real broker


class Command:
    """`hes-sim broker` in a subprocess, its output lines read as they come (None at the end)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "simulator.cli", "broker", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def stop(self, sig: signal.Signals) -> tuple[int, str, str]:
        """Send `sig`, wait for the end: (exit code, the rest of stdout, stderr)."""
        self.proc.send_signal(sig)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()
        code = self.proc.wait(timeout=60)
        rest = []
        while (line := self.lines.get(timeout=10)) is not None:
            rest.append(line)
        return code, "".join(rest), err

    def kill(self) -> None:
        """SIGTERM first (the command stops its JVM, which a SIGKILL would leave behind), then SIGKILL."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start_command(directory: Path) -> tuple[Command, str, int]:
    command = Command("--dir", str(directory), "--stomp-port", "0", "--openwire-port", "0", "--heap", "128m")
    try:
        ready = command.lines.get(timeout=90)
    except queue.Empty:
        ready = None
    if ready is None:
        command.kill()
        assert command.proc.stderr is not None
        pytest.fail(f"no ready line; stderr: {command.proc.stderr.read()}")
    match = re.fullmatch(r"ActiveMQ ready: STOMP 127\.0\.0\.1:(\d+), OpenWire 127\.0\.0\.1:(\d+), "
                         rf"data {re.escape(str(directory))} \(Ctrl-C stops\)\n", ready)
    assert match, ready
    return command, match.group(1), int(match.group(1))


def _processes_using(directory: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"xbean:file:{directory}/" in args:
            found.append(f"{cmdline.parent.name}: {args[:120]}")
    return found


def _receive(port: int, destination: str) -> JmsMessage:
    conn = JmsConnection("127.0.0.1", port, connect_timeout_s=5.0)
    got: queue.Queue[JmsMessage] = queue.Queue()

    def handler(msg: JmsMessage) -> None:
        got.put(msg)
        conn.ack(msg)

    try:
        conn.subscribe(destination, handler)
        return got.get(timeout=10)
    finally:
        conn.close()


@pytest.mark.integration
def test_the_command_serves_stops_on_a_signal_and_keeps_persistent_messages(tmp_path: Path) -> None:
    require_activemq()
    directory = tmp_path / "broker"
    kept, echoed = f"queue://kept.{uuid.uuid4().hex[:8]}", f"queue://echo.{uuid.uuid4().hex[:8]}"

    command, port_text, port = _start_command(directory)
    try:
        conn = JmsConnection("127.0.0.1", port, connect_timeout_s=5.0)
        try:
            conn.send(echoed, b"<ping/>", correlation_id="p-1")
            conn.send(kept, b"<kept/>", correlation_id="k-1")  # persistent by default; nobody reads it yet
        finally:
            conn.close()
        assert _receive(port, echoed).body == b"<ping/>"

        # A second broker on the same ports: one line, no traceback, and the first one unharmed.
        busy = subprocess.run([sys.executable, "-m", "simulator.cli", "broker", "--dir", str(tmp_path / "other"),
                               "--stomp-port", port_text, "--openwire-port", "0"],
                              capture_output=True, text=True, cwd=REPO, timeout=60)
        assert busy.returncode == 1
        assert re.fullmatch(rf"hes-sim: error: STOMP port {port} on 127\.0\.0\.1 is not free .*\n", busy.stderr)
        # And a second one on the same directory.
        twice = subprocess.run([sys.executable, "-m", "simulator.cli", "broker", "--dir", str(directory),
                                "--stomp-port", "0", "--openwire-port", "0"],
                               capture_output=True, text=True, cwd=REPO, timeout=60)
        assert twice.returncode == 1 and twice.stderr.count("\n") == 1
        assert f"an ActiveMQ already runs from {directory}" in twice.stderr
        assert command.proc.poll() is None

        assert _processes_using(directory)
        code, out, err = command.stop(signal.SIGINT)
    finally:
        command.kill()
    assert (code, out, err) == (0, "ActiveMQ stopped\n", "")
    assert _processes_using(directory) == []  # the JVM went with the command
    assert "Stopped KahaDB" in (directory / "activemq.log").read_text()  # cleanly, not killed

    command, _, port = _start_command(directory)
    try:
        msg = _receive(port, kept)
        assert (msg.body, msg.correlation_id) == (b"<kept/>", "k-1")
        code, out, err = command.stop(signal.SIGTERM)
    finally:
        command.kill()
    assert (code, out, err) == (0, "ActiveMQ stopped\n", "")
    assert _processes_using(directory) == []
