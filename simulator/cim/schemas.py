"""The XSD/WSDL profiles shipped in ``simulator.profiles``, and cached lxml validators for them.

Validation sits on the hot path (every request in, every reply out in tests), so each schema is
compiled once per process and shared; lxml validates ~100x faster than xmlschema.

Everything here works offline: files are read from the installed package, the parsers have
``no_network=True`` and ``resolve_entities=False``, and every ``schemaLocation`` in the profiles is
relative to a sibling file.

WSDL location trick: a WSDL is served at ``/{Service}?wsdl`` and the XSDs at ``/xsd/<File>.xsd``,
so inside the WSDL the imports read ``schemaLocation="xsd/<File>.xsd"``. On disk the WSDL lives in
``profiles/wsdl/`` but the XSDs in ``profiles/xsd/``; :func:`parse_wsdl` therefore parses it with the
profiles directory as base URL, and :func:`profile_uri_mapper` rewrites on-disk locations for tools
that insist on a file path (xmlschema's ``uri_mapper``, a zeep transport).
"""

from __future__ import annotations

import functools
import re
import threading
from importlib import resources
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from simulator.cim.xml import parse_xml
from simulator.errors import CimError

#: The base URL written in every ``soap:address``; :func:`read_wsdl` swaps it for the server's.
PLACEHOLDER_BASE_URL = "http://localhost:8080"

_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_lock = threading.Lock()


def _new_parser() -> etree.XMLParser:
    """Parser for our own trusted profile files; untrusted bytes go through `cim.xml.parse_xml`."""
    return etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False, dtd_validation=False)


@functools.cache
def profiles_dir() -> Path:
    """Directory holding ``xsd/`` and ``wsdl/``: the installed package data, or the source tree."""
    try:
        located = resources.files("simulator.profiles")
    except ModuleNotFoundError:
        located = None
    if located is not None:
        path = Path(str(located))
        if (path / "xsd").is_dir():
            return path
    # Running from a source checkout that was never installed: profiles/ sits beside simulator/.
    fallback = Path(__file__).resolve().parents[2] / "profiles"
    if (fallback / "xsd").is_dir():
        return fallback
    raise FileNotFoundError("the simulator.profiles package data (xsd/, wsdl/) cannot be found")


def xsd_names() -> list[str]:
    """Stems of the shipped XSDs, e.g. ``["GetMeterReadings", "GetMeterReadingsMessage", ...]``."""
    return list(_xsd_names())


@functools.cache
def _xsd_names() -> tuple[str, ...]:
    # Shipped files do not change while we run; globbing on every validate() cost ~3 % of a read.
    return tuple(sorted(p.stem for p in (profiles_dir() / "xsd").glob("*.xsd")))


def wsdl_services() -> list[str]:
    """Service names with a shipped WSDL; each is served at ``/{Service}?wsdl``."""
    return sorted(p.stem for p in (profiles_dir() / "wsdl").glob("*.wsdl"))


def _schema_stem(name: str) -> str:
    stem = name[:-4] if name.endswith(".xsd") else name
    if stem not in xsd_names():
        raise ValueError(f"unknown schema {name!r}; known: {', '.join(xsd_names())}")
    return stem


def xsd_path(name: str) -> Path:
    """Path of a shipped XSD by stem (``"Message"``) or file name (``"Message.xsd"``)."""
    return profiles_dir() / "xsd" / f"{_schema_stem(name)}.xsd"


def wsdl_path(service: str) -> Path:
    """Path of a shipped WSDL by service name. Its ``xsd/`` imports resolve against :func:`profiles_dir`,
    not against this file's directory: load it with :func:`parse_wsdl` or :func:`profile_uri_mapper`."""
    if service not in wsdl_services():
        raise ValueError(f"unknown service {service!r}; known: {', '.join(wsdl_services())}")
    return profiles_dir() / "wsdl" / f"{service}.wsdl"


def wsdl_base_url() -> str:
    """The base URL a WSDL must be read against offline so that ``xsd/X.xsd`` finds ``profiles/xsd/X.xsd``."""
    return profiles_dir().as_uri() + "/"


def profile_uri_mapper(uri: str) -> str:
    """Map a WSDL import resolved next to the on-disk WSDL (``.../wsdl/xsd/X.xsd``) to the real XSD.

    Fits xmlschema's ``uri_mapper`` argument and zeep transports; other URIs pass through unchanged.
    """
    root = profiles_dir()
    for wrong_prefix in ((root / "wsdl" / "xsd").as_uri() + "/", str(root / "wsdl" / "xsd") + "/"):
        if uri.startswith(wrong_prefix):
            return str(root / "xsd" / uri[len(wrong_prefix) :])
    return uri


def parse_wsdl(service: str) -> etree._ElementTree:
    """The WSDL as an lxml tree whose base URL makes its relative ``xsd/`` imports resolvable."""
    data = wsdl_path(service).read_bytes()
    root = etree.fromstring(data, _new_parser(), base_url=wsdl_base_url() + f"{service}.wsdl")
    return etree.ElementTree(root)


@functools.cache
def _wsdl_bytes(service: str) -> bytes:
    return wsdl_path(service).read_bytes()


def read_wsdl(service: str, base_url: str) -> bytes:
    """WSDL text for serving, the placeholder address replaced by ``base_url`` (trailing slash optional).

    Raises ValueError for an unknown service, so a request path cannot pick an arbitrary file.
    """
    replacement = escape(base_url.rstrip("/"), {'"': "&quot;"}).encode("utf-8")
    # Only the address attribute: the file's comments mention the placeholder too.
    needle = b'location="' + PLACEHOLDER_BASE_URL.encode("ascii")
    return _wsdl_bytes(service).replace(needle, b'location="' + replacement)


def read_xsd(filename: str) -> bytes | None:
    """Bytes of a shipped XSD by file name (``"Message.xsd"``), or None for anything else.

    Only plain names of shipped files are accepted: no directories, no ``..``, nothing outside ``xsd/``.
    """
    if not filename.endswith(".xsd") or not _SAFE_FILE_NAME.match(filename) or ".." in filename:
        return None
    if filename[:-4] not in xsd_names():
        return None
    return _xsd_bytes(filename)


@functools.cache
def _xsd_bytes(filename: str) -> bytes:
    return (profiles_dir() / "xsd" / filename).read_bytes()


@functools.cache
def _compiled(stem: str) -> etree.XMLSchema:
    tree = etree.parse(str(profiles_dir() / "xsd" / f"{stem}.xsd"), _new_parser())
    return etree.XMLSchema(tree)


def validator(name: str) -> etree.XMLSchema:
    """Compiled schema by XSD stem (``"MeterReadingsMessage"``), compiled once per process.

    The object is shared: its ``error_log`` belongs to whichever call ran last, so prefer
    :func:`validate` when several threads validate at once.
    """
    stem = _schema_stem(name)
    with _lock:
        return _compiled(stem)


def validate(document: etree._Element | etree._ElementTree | bytes, name: str) -> list[str]:
    """Schema errors of ``document`` against the named profile; empty when valid.

    Bytes go through the hardened `parse_xml`; bytes it refuses (not well-formed, DOCTYPE, too
    large) give one error with its reason.
    """
    schema = validator(name)
    if isinstance(document, bytes | bytearray):
        try:
            document = parse_xml(bytes(document))
        except CimError as exc:
            return [exc.reason]
    with _lock:
        if schema.validate(document):
            return []
        return [_format_error(entry) for entry in schema.error_log]


def _format_error(entry: etree._LogEntry) -> str:
    path = getattr(entry, "path", None)
    where = f" at {path}" if path else ""
    return f"line {entry.line}{where}: {entry.message}"
