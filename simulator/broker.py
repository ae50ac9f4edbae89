"""A local ActiveMQ broker for the JMS transport: our own config, our own ports, our own data directory.

Debian's `activemq` (5.17) ships an instance with OpenWire only (no STOMP) that wants to `su` to
an `activemq` user, and its options file points JAVA_HOME at a `default-java` that may not exist.
So we write a minimal config into a directory of our own (KahaDB there, so persistent messages
survive a restart; STOMP and OpenWire on the ports asked for; no web console, no JMX) and run the
package's launcher in the foreground in its own process group, which we end ourselves: a broker
we start never outlives the command that started it, short of a SIGKILL to that command.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from xml.sax.saxutils import quoteattr

from simulator.errors import SimulatorError

DEFAULT_DIR = "hes-sim-data/broker"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_STOMP_PORT = 61613  # ActiveMQ's usual ports, so clients configured for a stock broker just work
DEFAULT_OPENWIRE_PORT = 61616
DEFAULT_HEAP = "256m"
START_TIMEOUT_S = 60.0  # 1-3 s on a quiet machine; a loaded 2-core CI box can take much longer
STOP_TIMEOUT_S = 20.0
INSTALL_HINT = "apt-get install -y activemq"

_LAUNCHERS = ("/usr/share/activemq/bin/activemq", "/usr/bin/activemq")
# The launcher pastes paths into `sh -c` strings unquoted: a space or a shell character breaks it.
_UNSAFE_PATH = re.compile(r"[\s'\"`$\\;&|<>()*?!#~]")
_HEAP = re.compile(r"^([1-9][0-9]*)([mMgG])$")

_CONFIG = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by hes-sim at each start: edits here are overwritten. -->
<beans xmlns="http://www.springframework.org/schema/beans"
       xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:schemaLocation="http://www.springframework.org/schema/beans
         http://www.springframework.org/schema/beans/spring-beans.xsd
         http://activemq.apache.org/schema/core
         http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="hes-sim"
          useJmx="false" persistent="true" schedulerSupport="false" dataDirectory={data_dir}>
    <persistenceAdapter><kahaDB directory={kahadb_dir}/></persistenceAdapter>
    <systemUsage><systemUsage>
      <memoryUsage><memoryUsage percentOfJvmHeap="50"/></memoryUsage>
      <storeUsage><storeUsage limit="1 gb"/></storeUsage>
      <tempUsage><tempUsage limit="256 mb"/></tempUsage>
    </systemUsage></systemUsage>
    <transportConnectors>
      <transportConnector name="openwire" uri={openwire_uri}/>
      <transportConnector name="stomp" uri={stomp_uri}/>
    </transportConnectors>
  </broker>
</beans>
"""

# The Debian build logs through log4j 1.2 and finds this file in conf/ (on its classpath). INFO
# goes to a file beside the data: quiet on the terminal, there to quote when a start fails.
_LOG4J = """log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={log_path}
log4j.appender.file.MaxFileSize=10MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=%d %-5p %c{{1}} - %m%n
"""


@dataclass(frozen=True)
class Runtime:
    """What the broker needs from the machine: the package's launcher and a real `java` binary."""

    launcher: str
    java: str  # symlinks resolved, e.g. /usr/lib/jvm/java-17-openjdk-amd64/bin/java; JAVA_HOME is two levels up


def find_launcher() -> str | None:
    """The `activemq` package's launcher script, or None when the package is not installed."""
    for candidate in _LAUNCHERS:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("activemq")


def find_java() -> str | None:
    """`readlink -f $(which java)`: Debian's `default-java` link, which the launcher assumes, may be missing."""
    java = shutil.which("java")
    return None if java is None else str(Path(java).resolve())


def find_runtime() -> Runtime:
    launcher = find_launcher()
    if launcher is None:
        raise SimulatorError(f"ActiveMQ is not installed: {INSTALL_HINT}")
    java = find_java()
    if java is None:
        raise SimulatorError(f"no Java runtime (`java` is not on PATH): {INSTALL_HINT} default-jre-headless")
    return Runtime(launcher, java)


def jvm_options(heap: str = DEFAULT_HEAP) -> str:
    """JVM options for a broker of this heap (`256m`, `1g`; ValueError under the 64m ActiveMQ needs).
    The Debian options file forces -Xms512M -Xmx512M; ACTIVEMQ_DEBUG_OPTS comes after it, so these win."""
    match = _HEAP.match(heap.strip())
    if match is None:
        raise ValueError(f"heap {heap!r}: give a size such as 256m or 1g")
    if int(match.group(1)) * (1024 if match.group(2) in "gG" else 1) < 64:
        raise ValueError(f"heap {heap!r}: ActiveMQ needs at least 64m")
    return f"-Xms32m -Xmx{heap.strip()} -XX:+UseSerialGC"


def free_port(host: str = DEFAULT_HOST) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def stomp_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers a STOMP CONNECT with CONNECTED (the port alone opens earlier)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\n\n\x00")
            answer = s.recv(64)
            with contextlib.suppress(OSError):
                s.sendall(b"DISCONNECT\n\n\x00")
            return answer.startswith(b"CONNECTED")
    except OSError:
        return False


class Broker:
    """One broker directory and its ports, which survive `restart()` so clients can reconnect.

    `directory` holds conf/ (rewritten at each start), data/kahadb/ (the store), tmp/,
    activemq.log, console.log (the launcher's output, last start) and the launcher's pid file.
    """

    def __init__(self, directory: str | Path, *, host: str = DEFAULT_HOST, stomp_port: int | None = None,
                 openwire_port: int | None = None, heap: str = DEFAULT_HEAP, jvm_opts: str | None = None,
                 runtime: Runtime | None = None) -> None:
        self.directory = Path(directory).absolute()
        if _UNSAFE_PATH.search(str(self.directory)):
            raise SimulatorError(f"broker directory {str(self.directory)!r}: the activemq launcher cannot handle "
                                 "spaces or shell characters in paths; choose another directory")
        if not all(0 <= (port or 0) <= 65535 for port in (stomp_port, openwire_port)):
            raise SimulatorError(f"ports {stomp_port}, {openwire_port}: give 1-65535, or 0 for a free one")
        try:
            self.jvm_opts = jvm_opts if jvm_opts is not None else jvm_options(heap)
        except ValueError as exc:
            raise SimulatorError(str(exc)) from None
        self.conf_dir = self.directory / "conf"
        self.data_dir = self.directory / "data"
        self.log_path = self.directory / "activemq.log"
        self.console_path = self.directory / "console.log"
        self.host = host
        self.stomp_port = stomp_port or free_port(self.connect_host)
        self.openwire_port = openwire_port or free_port(self.connect_host)
        self.runtime = runtime
        self.start_seconds: float | None = None  # how long the last start took to answer STOMP
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    @property
    def connect_host(self) -> str:
        """Where a client on this machine reaches the broker (a wildcard bind is reached on loopback)."""
        return {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)

    @property
    def pid(self) -> int | None:
        """The launcher's process id, which is also the id of the broker's process group."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def write_config(self) -> Path:
        """Write conf/activemq.xml and conf/log4j.properties; returns the path of activemq.xml."""
        for directory in (self.conf_dir, self.data_dir, self.directory / "tmp"):
            directory.mkdir(parents=True, exist_ok=True)
        config = self.conf_dir / "activemq.xml"
        config.write_text(_CONFIG.format(
            data_dir=quoteattr(str(self.data_dir)), kahadb_dir=quoteattr(str(self.data_dir / "kahadb")),
            openwire_uri=quoteattr(f"tcp://{_uri_host(self.host)}:{self.openwire_port}"),
            stomp_uri=quoteattr(f"stomp://{_uri_host(self.host)}:{self.stomp_port}")))
        (self.conf_dir / "log4j.properties").write_text(_LOG4J.format(log_path=self.log_path))
        return config

    def environment(self, runtime: Runtime) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "JAVA_HOME": str(Path(runtime.java).parent.parent),
            "JAVACMD": runtime.java,  # the options file overwrites JAVA_HOME, not JAVACMD
            "ACTIVEMQ_BASE": str(self.directory),
            "ACTIVEMQ_CONF": str(self.conf_dir),
            "ACTIVEMQ_DATA": str(self.data_dir),
            "ACTIVEMQ_TMP": str(self.directory / "tmp"),
            "ACTIVEMQ_PIDFILE": str(self.directory / "activemq.pid"),
            # Run as whoever runs us: as root the launcher would otherwise `su` to `activemq`,
            # which may not be able to read this directory.
            "ACTIVEMQ_USER": pwd.getpwuid(os.getuid()).pw_name,
            "ACTIVEMQ_DEBUG_OPTS": self.jvm_opts,
        })
        return env

    def start(self, timeout: float = START_TIMEOUT_S, abort: Callable[[], bool] | None = None) -> None:
        """Start and wait until STOMP answers; returns early, broker stopped, when `abort()` turns true."""
        if self.pid is not None:
            return
        runtime = self.runtime or find_runtime()
        self._refuse_if_taken()
        config = self.write_config()
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        began = time.monotonic()
        with self.console_path.open("wb") as console:
            self._proc = subprocess.Popen(
                [runtime.launcher, "console", f"xbean:file:{config}"], stdin=subprocess.DEVNULL, stdout=console,
                stderr=subprocess.STDOUT, env=self.environment(runtime), cwd=self.directory, start_new_session=True)
        while time.monotonic() < began + timeout:
            if abort is not None and abort():
                self.stop()
                return
            if self._proc.poll() is not None:
                code, tail = self._proc.returncode, self.tail()
                self.stop()  # a JVM may still be on its way out
                why = "a port is already in use" if "Address already in use" in tail else f"exited with code {code}"
                raise SimulatorError(f"ActiveMQ could not start: {why}\n{tail}")
            if stomp_ready(self.connect_host, self.stomp_port):
                self.start_seconds = time.monotonic() - began
                return
            time.sleep(0.1)
        self.stop()
        raise SimulatorError(f"ActiveMQ did not answer STOMP on {self.connect_host}:{self.stomp_port} within "
                             f"{timeout:g} s\n{self.tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM to the group (ActiveMQ's shutdown hook closes KahaDB cleanly), SIGKILL past `timeout`."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        # The launcher's `sh -c` does not exec the JVM, so the shell dies at once while the JVM is
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
            with contextlib.suppress(OSError, ValueError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        best = max(best, int(line.split()[1]))
        return best or None

    def tail(self, lines: int = 25) -> str:
        """The last lines the launcher and the broker wrote since the last start, Java stack frames left out."""
        out = []
        for path, offset in ((self.console_path, 0), (self.log_path, self._log_offset)):
            with contextlib.suppress(OSError):
                with path.open("rb") as f:
                    f.seek(offset)
                    text = f.read().decode(errors="replace")
                kept = [line for line in text.splitlines() if line.strip() and not line.startswith(("\tat ", "\t..."))]
                if kept:
                    out.append(f"--- {path}\n" + "\n".join(kept[-lines:]))
        return "\n".join(out) or f"(nothing in {self.console_path} or {self.log_path})"

    def _refuse_if_taken(self) -> None:
        """Fail in one line before the launcher or the JVM fails in forty."""
        pidfile = self.directory / "activemq.pid"
        pid = _running_launcher(pidfile, self.conf_dir / "activemq.xml")
        if pid is not None:
            raise SimulatorError(f"an ActiveMQ already runs from {self.directory} (pid {pid}); stop it first")
        pidfile.unlink(missing_ok=True)  # stale: the launcher would refuse if its pid is now another java
        for what, port in (("STOMP", self.stomp_port), ("OpenWire", self.openwire_port)):
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM does: TIME_WAIT is no conflict
                try:
                    s.bind((self.host, port))
                except OSError as exc:
                    raise SimulatorError(f"{what} port {port} on {self.host} is not free ({exc.strerror}): another "
                                         "broker running? choose another port") from None


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host or "0.0.0.0"


def _running_launcher(pidfile: Path, config: Path) -> int | None:
    """The pid in the launcher's pid file while that process still runs a broker on `config`."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()  # empty for a zombie
    except (OSError, ValueError):
        return None
    return pid if f"xbean:file:{config}".encode() in cmdline else None


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
        proc.poll()  # reap the launcher's shell, our own child
        if not _group_members(proc.pid):
            return True
        time.sleep(0.05)
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)  # the session we started: the launcher, its shell and the JVM


# ------------------------------------------------------------------------------- command


def _heap_arg(text: str) -> str:
    try:
        jvm_options(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `broker` sub-command to a `hes-sim` parser's subparsers."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "broker", help="run a local ActiveMQ broker (STOMP + OpenWire, persistent) in the foreground until Ctrl-C",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dir", default=DEFAULT_DIR, help="config, store and logs, kept between runs")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on")
    p.add_argument("--stomp-port", type=int, default=DEFAULT_STOMP_PORT, help="STOMP port (0: a free one)")
    p.add_argument("--openwire-port", type=int, default=DEFAULT_OPENWIRE_PORT, help="for Java clients (0: a free one)")
    p.add_argument("--heap", type=_heap_arg, default=DEFAULT_HEAP, help="JVM heap, e.g. 256m or 1g")
    p.set_defaults(func=run_broker)
    return p


def run_broker(args: argparse.Namespace) -> int:
    """The `hes-sim broker` command: serve until SIGINT, SIGTERM or SIGHUP, then stop the JVM and wait for it."""
    broker = Broker(args.dir, host=args.host, stomp_port=args.stomp_port, openwire_port=args.openwire_port,
                    heap=args.heap)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()  # never raises: whatever is in progress finishes, then the broker is stopped

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        broker.start(abort=stop.is_set)
        if not stop.is_set():
            host = _uri_host(broker.host)
            print(f"ActiveMQ ready: STOMP {host}:{broker.stomp_port}, OpenWire {host}:{broker.openwire_port}, "
                  f"data {args.dir} (Ctrl-C stops)", flush=True)
        while not stop.wait(0.5):
            if broker.pid is None:
                raise SimulatorError(f"ActiveMQ stopped by itself\n{broker.tail()}")
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("ActiveMQ stopped", flush=True)
    return 0
