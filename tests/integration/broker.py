"""A real ActiveMQ broker for integration tests: our own config, our own ports, our own data dir.

The Debian `activemq` package (5.17) listens only for OpenWire on 127.0.0.1:61616 with its shipped
config, has no STOMP connector, and its options file points JAVA_HOME at a `default-java` that
does not exist. So we never use the shipped instance: we write a minimal config into a temp
directory (KahaDB there, so a restart keeps persistent messages; OpenWire and STOMP on free
loopback ports; no web console, no JMX) and run the package's script in the foreground
(`activemq console xbean:file:...`) in its own process group, which we end ourselves.

When the package is missing, tests skip with the reason; under CI (`CI` set to a true value) the
package is part of the CI install, so its absence is a failure, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# The Debian options file forces -Xms512M -Xmx512M; options given later on the JVM command line
# win, and ACTIVEMQ_DEBUG_OPTS is appended after it. A test broker needs far less.
JVM_MEMORY_OPTS = "-Xms32m -Xmx192m -XX:+UseSerialGC -XX:TieredStopAtLevel=1"

_SCRIPT_CANDIDATES = ("/usr/share/activemq/bin/activemq", "/usr/bin/activemq")

_CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by hes-sim's test helper: a throwaway broker on loopback ports. -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans
         http://www.springframework.org/schema/beans/spring-beans.xsd
         http://activemq.apache.org/schema/core
         http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="hes-sim-test"
          useJmx="false" persistent="true" schedulerSupport="false"
          dataDirectory="{data_dir}">
    <persistenceAdapter>
      <kahaDB directory="{data_dir}/kahadb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="32 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="256 mb"/></storeUsage>
        <tempUsage><tempUsage limit="64 mb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:{openwire_port}"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:{stomp_port}"/>
    </transportConnectors>
  </broker>
</beans>
"""

# The Debian build logs through log4j 1.2 (it warns "No appenders" without this file). INFO goes
# to a file in the broker's directory: quiet on the terminal, there to quote when a start fails.
_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File={log_path}
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d %-5p %c{{1}} - %m%n
"""


@dataclass(frozen=True)
class BrokerInfo:
    stomp_port: int
    openwire_port: int
    data_dir: Path


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def find_activemq() -> str | None:
    """The package's launcher script, or None when the package is not installed."""
    for candidate in _SCRIPT_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("activemq")


def java_home() -> str | None:
    """The installed JDK (`readlink -f $(which java)`, two levels up), since `default-java` may not exist."""
    java = shutil.which("java")
    if java is None:
        return None
    return str(Path(java).resolve().parent.parent)


def require_activemq() -> tuple[str, str]:
    """(script, JAVA_HOME), or skip the test; under CI a missing broker fails it instead."""
    script, home = find_activemq(), java_home()
    missing = "the `activemq` package" if script is None else "a Java runtime" if home is None else None
    if missing is None:
        assert script is not None and home is not None
        return script, home
    reason = f"{missing} is not installed (apt-get install -y activemq)"
    if _ci():
        pytest.fail(f"CI is set but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stomp_ready(port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers a STOMP CONNECT with CONNECTED (the port alone opens earlier)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
            answer = s.recv(64)
            s.sendall(b"DISCONNECT\n\n\x00")
            return answer.startswith(b"CONNECTED")
    except OSError:
        return False


class Broker:
    """One broker directory and its ports, which survive `restart()` so clients can reconnect."""

    def __init__(self, root: Path, script: str, home: str) -> None:
        self.root = root
        self.script = script
        self.java_home = home
        self.info = BrokerInfo(stomp_port=free_port(), openwire_port=free_port(), data_dir=root / "data")
        self.conf_dir = root / "conf"
        self.log_path = root / "broker.log"
        self.console_path = root / "console.log"
        self.start_seconds: float | None = None  # how long the last start took to answer STOMP
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def stomp_port(self) -> int:
        return self.info.stomp_port

    @property
    def openwire_port(self) -> int:
        return self.info.openwire_port

    @property
    def data_dir(self) -> Path:
        return self.info.data_dir

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _write_config(self) -> None:
        for directory in (self.conf_dir, self.info.data_dir, self.root / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "activemq.xml").write_text(_CONFIG.format(
            data_dir=self.info.data_dir, openwire_port=self.info.openwire_port, stomp_port=self.info.stomp_port))
        (self.conf_dir / "log4j.properties").write_text(_LOG4J.format(log_path=self.log_path))

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "JAVA_HOME": self.java_home,
            "ACTIVEMQ_BASE": str(self.root),
            "ACTIVEMQ_CONF": str(self.conf_dir),
            "ACTIVEMQ_DATA": str(self.info.data_dir),
            "ACTIVEMQ_TMP": str(self.root / "tmp"),
            "ACTIVEMQ_PIDFILE": str(self.root / "activemq.pid"),
            # Run as whoever runs the tests: as root the script would otherwise `su` to `activemq`,
            # which cannot read a pytest temp directory.
            "ACTIVEMQ_USER": _current_user(),
            "ACTIVEMQ_DEBUG_OPTS": JVM_MEMORY_OPTS,
        })
        return env

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        if self.pid is not None:
            return
        began = time.monotonic()
        with self.console_path.open("ab") as console:
            self._proc = subprocess.Popen(
                [self.script, "console", f"xbean:file:{self.conf_dir / 'activemq.xml'}"],
                stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT, env=self._env(),
                cwd=self.root, start_new_session=True)
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"ActiveMQ exited with {self._proc.returncode} while starting\n{self._tail()}")
            if stomp_ready(self.info.stomp_port):
                self.start_seconds = time.monotonic() - began
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"ActiveMQ did not answer STOMP within {timeout:g} s\n{self._tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM (ActiveMQ's shutdown hook closes KahaDB cleanly), then SIGKILL past `timeout`."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        # The script's `sh -c` does not exec the JVM, so the shell dies at once and the JVM is
        # still flushing KahaDB: wait for the whole group, or a restart would race for the store.
        _signal_group(proc.pid, signal.SIGTERM)
        if not _wait_group_gone(proc, timeout):
            _signal_group(proc.pid, signal.SIGKILL)
            _wait_group_gone(proc, 10.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def rss_kib(self) -> int | None:
        """Resident memory of the broker's JVM (the process group's largest member), for reports."""
        if self.pid is None:
            return None
        best = 0
        for pid in _group_members(self.pid):
            try:
                text = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("VmRSS:"):
                    best = max(best, int(line.split()[1]))
        return best or None

    def _tail(self, lines: int = 40) -> str:
        out = []
        for path in (self.console_path, self.log_path):
            if path.exists():
                out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group; PID 1 in a container may never reap the JVM."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if len(fields) > 2 and fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def _wait_group_gone(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.poll()  # reap the script's shell, our own child
        if not _group_members(proc.pid):
            return True
        time.sleep(0.05)
    return False


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)  # the session we started: the script, its shell and the JVM


@contextmanager
def running_broker(tmp_path: Path) -> Iterator[Broker]:
    """A started broker under `tmp_path` (skips when ActiveMQ is absent); stopped on exit, whatever happens."""
    script, home = require_activemq()
    broker = Broker(Path(tmp_path), script, home)
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()
