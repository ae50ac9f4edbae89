"""Hand-written EndDeviceControls / EndDeviceEvents / GetEndDeviceEvents messages.

Realistic enough to exercise the parts of the profiles the simulator uses: a scheduled remote
disconnect of two meters, its cancellation, the synchronous acceptance, the per-meter outcome
events and an event query. Each builder returns bytes; keyword arguments swap one fragment so
negative samples differ from a valid one in exactly one respect.
"""

from __future__ import annotations

MSG = "http://iec.ch/TC57/2011/schema/message"
EDC = "http://iec.ch/TC57/2011/EndDeviceControls#"
EDC_MSG = "http://iec.ch/TC57/2011/EndDeviceControlsMessage"
EDE = "http://iec.ch/TC57/2011/EndDeviceEvents#"
EDE_MSG = "http://iec.ch/TC57/2011/EndDeviceEventsMessage"
GED = "http://iec.ch/TC57/2011/GetEndDeviceEvents#"
GED_MSG = "http://iec.ch/TC57/2011/GetEndDeviceEventsMessage"

NSDECL = (
    f'xmlns:msg="{MSG}" xmlns:edc="{EDC}" xmlns:edcm="{EDC_MSG}" xmlns:ede="{EDE}" '
    f'xmlns:edem="{EDE_MSG}" xmlns:ged="{GED}" xmlns:gedm="{GED_MSG}"'
)

METER_A = "4c1b8e52-97d3-4f0a-b6e1-2a9d0c7f3e18"
METER_B = "d07e2a91-5c3f-4b86-a4d2-e19f6b0c8a75"
CONTROL_MRID = "a3f0c6d2-1e4b-4c79-8d5a-6b2e9f1c0d47"
TRACKING_ID = "DISC-2026-03-10-0042"
TRANSACTION_ID = "edc-000017"
DISCONNECT = "3.31.0.23"
DISCONNECTED = "3.31.0.68"
DISCONNECT_FAILED = "3.31.0.84"
SCHEDULED_START = "2026-03-10T14:00:00Z"

START_THEN_END = "<edc:start>2026-03-10T14:00:00Z</edc:start><edc:end>2026-03-10T15:00:00Z</edc:end>"


def header(verb: str, noun: str, extra: str = "") -> str:
    return (
        f"<msg:Verb>{verb}</msg:Verb><msg:Noun>{noun}</msg:Noun><msg:Revision>2.0</msg:Revision>"
        "<msg:Timestamp>2026-03-10T13:02:11Z</msg:Timestamp><msg:Source>MDMS</msg:Source>"
        f"{extra}"
        "<msg:MessageID>0e7c2b54-3f1a-4d89-b6c0-9a8e7d6f5c41</msg:MessageID>"
        "<msg:CorrelationID>5b9d1e27-6c40-4a3f-8e12-7f0a3c9b2d68</msg:CorrelationID>"
    )


ASYNC_HEADER = (
    "<msg:AsyncReplyFlag>true</msg:AsyncReplyFlag>"
    "<msg:ReplyAddress>http://mdms.example:8081/ReplyEndDeviceControls</msg:ReplyAddress>"
    "<msg:AckRequired>true</msg:AckRequired>"
    "<msg:User><msg:UserID>collections-batch</msg:UserID><msg:Organization>Utility</msg:Organization></msg:User>"
)

# ------------------------------------------------------------------------------ controls


def disconnect_control(
    interval: str = f"<edc:start>{SCHEDULED_START}</edc:start>",
    control_type: str = f'<edc:EndDeviceControlType ref="{DISCONNECT}"/>',
    randomisation: str = "none",
) -> str:
    """One EndDeviceControl: scheduled remote disconnect of two meters named by mRID (one also by name)."""
    return (
        "<edc:EndDeviceControl>"
        f"<edc:mRID>{CONTROL_MRID}</edc:mRID>"
        "<edc:issuerID>MDMS</edc:issuerID>"
        f"<edc:issuerTrackingID>{TRACKING_ID}</edc:issuerTrackingID>"
        "<edc:reason>non-payment</edc:reason>"
        f"{control_type}"
        f"<edc:EndDevices><edc:mRID>{METER_A}</edc:mRID></edc:EndDevices>"
        f"<edc:EndDevices><edc:mRID>{METER_B}</edc:mRID>"
        "<edc:Names><edc:name>SIM00000042</edc:name>"
        "<edc:NameType><edc:name>MeterUniqueID</edc:name></edc:NameType></edc:Names>"
        "</edc:EndDevices>"
        f"<edc:primaryDeviceTiming><edc:randomisation>{randomisation}</edc:randomisation>"
        f"<edc:interval>{interval}</edc:interval></edc:primaryDeviceTiming>"
        "</edc:EndDeviceControl>"
    )


def end_device_controls(control: str | None = None) -> str:
    """The EndDeviceControls document, with the optional description of the code used."""
    return (
        "<edc:EndDeviceControls>"
        f"{disconnect_control() if control is None else control}"
        f"<edc:EndDeviceControlType><edc:mRID>{DISCONNECT}</edc:mRID><edc:domain>31</edc:domain>"
        "<edc:eventOrAction>23</edc:eventOrAction><edc:subDomain>0</edc:subDomain><edc:type>3</edc:type>"
        "<edc:Names><edc:name>remote disconnect</edc:name></edc:Names></edc:EndDeviceControlType>"
        "</edc:EndDeviceControls>"
    )


def create_end_device_controls(
    verb: str = "create", control: str | None = None, header_xml: str | None = None, wrapper: str = EDC_MSG
) -> bytes:
    """{EndDeviceControlsMessage}CreateEndDeviceControls as an MDMS sends it (asynchronous results asked)."""
    head = f"<edcm:Header>{header(verb, 'EndDeviceControls', ASYNC_HEADER)}</edcm:Header>"
    return _in_wrapper(
        (
            f"<edcm:CreateEndDeviceControls {NSDECL}>{head if header_xml is None else header_xml}"
            f"<edcm:Payload>{end_device_controls(control)}</edcm:Payload>"
            "</edcm:CreateEndDeviceControls>"
        ),
        EDC_MSG,
        wrapper,
    )


def cancel_by_request_id() -> bytes:
    """CancelEndDeviceControls naming the control by the transaction ID its create was answered with."""
    return (
        f"<edcm:CancelEndDeviceControls {NSDECL}><edcm:Header>{header('cancel', 'EndDeviceControls')}</edcm:Header>"
        f'<edcm:Request><msg:ID kind="transaction" objectType="EndDeviceControl">{TRANSACTION_ID}</msg:ID>'
        "</edcm:Request></edcm:CancelEndDeviceControls>"
    ).encode()


def cancel_by_payload(control_type: str = f'<edc:EndDeviceControlType ref="{DISCONNECT}"/>') -> bytes:
    """CancelEndDeviceControls naming the control by its issuerTrackingID in a typed payload."""
    control = (
        f"<edc:EndDeviceControl><edc:issuerTrackingID>{TRACKING_ID}</edc:issuerTrackingID>"
        f"{control_type}</edc:EndDeviceControl>"
    )
    return (
        f"<edcm:CancelEndDeviceControls {NSDECL}><edcm:Header>{header('cancel', 'EndDeviceControls')}</edcm:Header>"
        f"<edcm:Payload><edc:EndDeviceControls>{control}</edc:EndDeviceControls></edcm:Payload>"
        "</edcm:CancelEndDeviceControls>"
    ).encode()


def cancel_by_payload_id_typed() -> bytes:
    """The generic Payload/ID form put in the typed wrapper: not allowed there (negative sample)."""
    return (
        f"<edcm:CancelEndDeviceControls {NSDECL}><edcm:Header>{header('cancel', 'EndDeviceControls')}</edcm:Header>"
        f'<edcm:Payload><msg:ID kind="transaction">{TRANSACTION_ID}</msg:ID></edcm:Payload>'
        "</edcm:CancelEndDeviceControls>"
    ).encode()


def cancel_by_payload_id_generic() -> bytes:
    """msg:RequestMessage cancel with the control named in Payload/ID: the envelope's own form."""
    return (
        f"<msg:RequestMessage {NSDECL}><msg:Header>{header('cancel', 'EndDeviceControls')}</msg:Header>"
        f'<msg:Payload><msg:ID kind="transaction" objectType="EndDeviceControl">{TRANSACTION_ID}</msg:ID>'
        "</msg:Payload></msg:RequestMessage>"
    ).encode()


def controls_response(result: str = "OK", wrapper: str = EDC_MSG, with_reply: bool = True) -> bytes:
    """Synchronous acceptance: Reply OK with the control's transaction ID."""
    reply = (
        f"<edcm:Reply><msg:Result>{result}</msg:Result>"
        "<msg:Error><msg:code>0.0</msg:code><msg:level>INFORM</msg:level>"
        "<msg:reason>accepted, results follow</msg:reason></msg:Error>"
        f'<msg:ID kind="transaction" objectType="EndDeviceControl">{TRANSACTION_ID}</msg:ID></edcm:Reply>'
    )
    return _in_wrapper(
        (
            f"<edcm:EndDeviceControlsResponseMessage {NSDECL}>"
            f"<edcm:Header>{header('reply', 'EndDeviceControls')}</edcm:Header>"
            f"{reply if with_reply else ''}"
            "</edcm:EndDeviceControlsResponseMessage>"
        ),
        EDC_MSG,
        wrapper,
    )


def created_end_device_controls(reply: str = "") -> bytes:
    """{EndDeviceControlsMessage}CreatedEndDeviceControls: the asynchronous echo of the executed control."""
    control = (
        f"<edc:EndDeviceControl><edc:mRID>{CONTROL_MRID}</edc:mRID>"
        f"<edc:issuerTrackingID>{TRACKING_ID}</edc:issuerTrackingID>"
        f'<edc:EndDeviceControlType ref="{DISCONNECT}"/>'
        f"<edc:EndDevices><edc:mRID>{METER_A}</edc:mRID></edc:EndDevices>"
        f"<edc:primaryDeviceTiming><edc:interval><edc:start>{SCHEDULED_START}</edc:start></edc:interval>"
        "</edc:primaryDeviceTiming></edc:EndDeviceControl>"
    )
    return (
        f"<edcm:CreatedEndDeviceControls {NSDECL}><edcm:Header>{header('created', 'EndDeviceControls')}</edcm:Header>"
        f"{reply}<edcm:Payload><edc:EndDeviceControls>{control}</edc:EndDeviceControls></edcm:Payload>"
        "</edcm:CreatedEndDeviceControls>"
    ).encode()


def controls_fault() -> bytes:
    return (
        f"<edcm:EndDeviceControlsFaultMessage {NSDECL}><edcm:Reply><msg:Result>FAILED</msg:Result>"
        "<msg:Error><msg:code>1.8</msg:code><msg:level>FATAL</msg:level>"
        "<msg:reason>request fails schema validation</msg:reason></msg:Error>"
        "</edcm:Reply></edcm:EndDeviceControlsFaultMessage>"
    ).encode()


# -------------------------------------------------------------------------------- events

EVENT_TYPE_REF = f'<ede:EndDeviceEventType ref="{DISCONNECTED}"/>'
CREATED_AT = "<ede:createdDateTime>2026-03-10T14:00:07Z</ede:createdDateTime>"


def disconnected_event(created: str = CREATED_AT, event_type: str = EVENT_TYPE_REF, device: str | None = None) -> str:
    """Meter A disconnected by the control: Assets/mRID, the control's issuerTrackingID, details."""
    asset = f"<ede:Assets><ede:mRID>{METER_A}</ede:mRID></ede:Assets>" if device is None else device
    return (
        "<ede:EndDeviceEvent>"
        "<ede:mRID>7d2c9a10-4e3b-4f68-a1c5-0b9e8d7f6a32</ede:mRID>"
        f"{created}"
        "<ede:issuerID>HES</ede:issuerID>"
        f"<ede:issuerTrackingID>{TRACKING_ID}</ede:issuerTrackingID>"
        "<ede:reason>remote disconnect executed</ede:reason>"
        "<ede:severity>Information</ede:severity>"
        f"{asset}"
        "<ede:EndDeviceEventDetails><ede:name>relayState</ede:name><ede:value>disconnected</ede:value>"
        "</ede:EndDeviceEventDetails>"
        "<ede:EndDeviceEventDetails><ede:name>controlMRID</ede:name>"
        f"<ede:value>{CONTROL_MRID}</ede:value></ede:EndDeviceEventDetails>"
        f"{event_type}"
        "<ede:UsagePoint><ede:mRID>UP-000042</ede:mRID></ede:UsagePoint>"
        "</ede:EndDeviceEvent>"
    )


def disconnect_failed_event() -> str:
    """Meter B: the relay did not open."""
    return (
        "<ede:EndDeviceEvent>"
        "<ede:mRID>2f6e0b83-9d14-4c57-8a2e-5c1d3b7e9f04</ede:mRID>"
        "<ede:createdDateTime>2026-03-10T14:00:09Z</ede:createdDateTime>"
        f"<ede:issuerTrackingID>{TRACKING_ID}</ede:issuerTrackingID>"
        "<ede:severity>Warning</ede:severity>"
        f"<ede:Assets><ede:mRID>{METER_B}</ede:mRID><ede:Names><ede:name>SIM00000042</ede:name></ede:Names>"
        "</ede:Assets>"
        "<ede:EndDeviceEventDetails><ede:name>failure</ede:name><ede:value>relay did not open</ede:value>"
        "</ede:EndDeviceEventDetails>"
        f'<ede:EndDeviceEventType ref="{DISCONNECT_FAILED}"/>'
        "</ede:EndDeviceEvent>"
    )


def end_device_events(first: str | None = None) -> str:
    return (
        "<ede:EndDeviceEvents>"
        f"{disconnected_event() if first is None else first}{disconnect_failed_event()}"
        f"<ede:EndDeviceEventType><ede:mRID>{DISCONNECTED}</ede:mRID><ede:domain>31</ede:domain>"
        "<ede:eventOrAction>68</ede:eventOrAction><ede:subDomain>0</ede:subDomain><ede:type>3</ede:type>"
        "<ede:Names><ede:name>disconnected</ede:name></ede:Names></ede:EndDeviceEventType>"
        "</ede:EndDeviceEvents>"
    )


PARTIAL_REPLY = (
    "<edem:Reply><msg:Result>PARTIAL</msg:Result>"
    "<msg:Error><msg:code>0.2</msg:code><msg:level>WARNING</msg:level>"
    "<msg:reason>1 of 2 meters failed</msg:reason></msg:Error></edem:Reply>"
)


def created_end_device_events(reply: str = "", first: str | None = None, wrapper: str = EDE_MSG) -> bytes:
    """{EndDeviceEventsMessage}CreatedEndDeviceEvents: the outcome of the control for each meter."""
    return _in_wrapper(
        (
            f"<edem:CreatedEndDeviceEvents {NSDECL}>"
            f"<edem:Header>{header('created', 'EndDeviceEvents')}</edem:Header>{reply}"
            f"<edem:Payload>{end_device_events(first)}</edem:Payload>"
            "</edem:CreatedEndDeviceEvents>"
        ),
        EDE_MSG,
        wrapper,
    )


def events_ack() -> bytes:
    """The MDMS's answer to CreatedEndDeviceEvents."""
    return (
        f"<edem:EndDeviceEventsResponseMessage {NSDECL}><edem:Header>{header('reply', 'EndDeviceEvents')}"
        "</edem:Header><edem:Reply><msg:Result>OK</msg:Result></edem:Reply></edem:EndDeviceEventsResponseMessage>"
    ).encode()


# ------------------------------------------------------------------------- event queries

SCHEDULE = "<ged:end>2026-03-11T00:00:00Z</ged:end><ged:start>2026-03-10T00:00:00Z</ged:start>"


def events_query(
    schedule: str = f"<ged:TimeSchedule><ged:scheduleInterval>{SCHEDULE}</ged:scheduleInterval></ged:TimeSchedule>",
    meter_names: str = "<ged:Names><ged:name>SIM00000042</ged:name></ged:Names>",
) -> str:
    """GetEndDeviceEvents: two meters, one event type, one day."""
    return (
        "<ged:GetEndDeviceEvents>"
        f"<ged:EndDeviceEventType><ged:mRID>{DISCONNECTED}</ged:mRID></ged:EndDeviceEventType>"
        f"<ged:Meter><ged:mRID>{METER_A}</ged:mRID></ged:Meter>"
        f"<ged:Meter>{meter_names}</ged:Meter>"
        f"{schedule}"
        "</ged:GetEndDeviceEvents>"
    )


def get_end_device_events(
    verb: str = "get", query: str | None = None, request_id: str = "<gedm:ID>events-17</gedm:ID>"
) -> bytes:
    """{GetEndDeviceEventsMessage}GetEndDeviceEvents as a client of the GetEndDeviceEvents service sends it."""
    return (
        f"<gedm:GetEndDeviceEvents {NSDECL}><gedm:Header>{header(verb, 'EndDeviceEvents')}</gedm:Header>"
        "<gedm:Request><gedm:Option><msg:name>maxEvents</msg:name><msg:value>1000</msg:value></gedm:Option>"
        f"{request_id}{events_query() if query is None else query}</gedm:Request>"
        "</gedm:GetEndDeviceEvents>"
    ).encode()


def get_events_response(result: str = "OK") -> bytes:
    """The answer of GetEndDeviceEvents: in the Get wrapper's namespace."""
    return (
        f"<gedm:EndDeviceEventsResponseMessage {NSDECL}><gedm:Header>{header('reply', 'EndDeviceEvents')}"
        f"</gedm:Header><gedm:Reply><msg:Result>{result}</msg:Result></gedm:Reply>"
        f"<gedm:Payload>{end_device_events()}<gedm:Format>XML</gedm:Format></gedm:Payload>"
        "</gedm:EndDeviceEventsResponseMessage>"
    ).encode()


def get_events_fault() -> bytes:
    return (
        f"<gedm:EndDeviceEventsFaultMessage {NSDECL}><gedm:Reply><msg:Result>FAILED</msg:Result>"
        "<msg:Error><msg:code>2.4</msg:code><msg:level>FATAL</msg:level><msg:reason>no such meter</msg:reason>"
        f'<msg:ID kind="uuid" objectType="EndDevice">{METER_B}</msg:ID></msg:Error>'
        "</gedm:Reply></gedm:EndDeviceEventsFaultMessage>"
    ).encode()


def _in_wrapper(text: str, ours: str, wrapper: str) -> bytes:
    """Put the document's wrapper elements in another namespace (the 2017 copies use .../2017/...)."""
    return text.replace(f'"{ours}"', f'"{wrapper}"').encode()
