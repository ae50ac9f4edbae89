"""Hand-written requests, shaped as an MDMS sends them on the wire."""

from __future__ import annotations

SOAP_OPEN = '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Header/><soapenv:Body>'
SOAP_CLOSE = "</soapenv:Body></soapenv:Envelope>"


def soap(body: str) -> bytes:
    return (SOAP_OPEN + body + SOAP_CLOSE).encode()


def get_profile(
    *,
    meters: list[str] = (),  # type: ignore[assignment]
    meter_names: list[str] = (),  # type: ignore[assignment]
    usage_points: list[str] = (),  # type: ignore[assignment]
    groups: list[str] = (),  # type: ignore[assignment]
    reading_types: list[str] = (),  # type: ignore[assignment]
    period: tuple[str, str] | None = None,
    prefix: str = "gmr",
) -> str:
    p = prefix
    parts = [f'<{p}:GetMeterReadings xmlns:{p}="http://iec.ch/TC57/2011/GetMeterReadings#">']
    parts += [f"<{p}:EndDevice><{p}:mRID>{m}</{p}:mRID></{p}:EndDevice>" for m in meters]
    parts += [f"<{p}:EndDevice><{p}:Names><{p}:name>{n}</{p}:name></{p}:Names></{p}:EndDevice>"
              for n in meter_names]
    parts += [f"<{p}:EndDeviceGroup><{p}:Names><{p}:name>{g}</{p}:name></{p}:Names></{p}:EndDeviceGroup>"
              for g in groups]
    if period:
        parts.append(f"<{p}:Reading><{p}:timePeriod><{p}:end>{period[1]}</{p}:end>"
                     f"<{p}:start>{period[0]}</{p}:start></{p}:timePeriod></{p}:Reading>")
    parts += [f"<{p}:ReadingType><{p}:mRID>{rt}</{p}:mRID></{p}:ReadingType>" for rt in reading_types]
    parts += [f"<{p}:UsagePoint><{p}:mRID>{u}</{p}:mRID></{p}:UsagePoint>" for u in usage_points]
    parts.append(f"</{p}:GetMeterReadings>")
    return "".join(parts)


def typed_get(profile: str, correlation_id: str = "corr-1", verb: str = "get", noun: str = "MeterReadings",
              request_extra: str = "", reply_address: str | None = None, ack_required: bool = False) -> str:
    extra = ""
    if reply_address is not None:
        extra += f"<h:AsyncReplyFlag>true</h:AsyncReplyFlag><h:ReplyAddress>{reply_address}</h:ReplyAddress>"
    if ack_required:
        extra += "<h:AckRequired>true</h:AckRequired>"
    return (
        '<m:GetMeterReadings xmlns:m="http://iec.ch/TC57/2011/GetMeterReadingsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message">'
        f"<m:Header><h:Verb>{verb}</h:Verb><h:Noun>{noun}</h:Noun>{extra}"
        f"<h:MessageID>msg-1</h:MessageID><h:CorrelationID>{correlation_id}</h:CorrelationID></m:Header>"
        f"<m:Request>{request_extra}{profile}</m:Request></m:GetMeterReadings>"
    )


def generic_get(profile: str, verb: str = "get", noun: str = "MeterReadings", correlation_id: str = "corr-g") -> str:
    return (
        '<msg:RequestMessage xmlns:msg="http://iec.ch/TC57/2011/schema/message">'
        f"<msg:Header><msg:Verb>{verb}</msg:Verb><msg:Noun>{noun}</msg:Noun>"
        f"<msg:CorrelationID>{correlation_id}</msg:CorrelationID></msg:Header>"
        f"<msg:Request>{profile}</msg:Request></msg:RequestMessage>"
    )


def control(code: str, *, meters: list[str] = (), groups: list[str] = (), tracking: str | None = None,  # type: ignore[assignment]
            start: str | None = None) -> str:
    """One EndDeviceControl element (profile namespace prefix `c`)."""
    parts = ["<c:EndDeviceControl>"]
    if tracking:
        parts.append(f"<c:issuerTrackingID>{tracking}</c:issuerTrackingID>")
    parts.append(f'<c:EndDeviceControlType ref="{code}"/>')
    parts += [f"<c:EndDeviceGroups><c:Names><c:name>{g}</c:name></c:Names></c:EndDeviceGroups>" for g in groups]
    parts += [f"<c:EndDevices><c:mRID>{m}</c:mRID></c:EndDevices>" for m in meters]
    if start:
        parts.append(f"<c:primaryDeviceTiming><c:interval><c:start>{start}</c:start></c:interval></c:primaryDeviceTiming>")
    parts.append("</c:EndDeviceControl>")
    return "".join(parts)


def controls_request(verb: str, controls: list[str], *, reply_address: str | None = None,
                     correlation_id: str = "ctl-1", request_ids: list[str] = ()) -> str:  # type: ignore[assignment]
    """CreateEndDeviceControls / CancelEndDeviceControls as an MDMS sends it."""
    extra = ""
    if reply_address:
        extra = f"<h:AsyncReplyFlag>true</h:AsyncReplyFlag><h:ReplyAddress>{reply_address}</h:ReplyAddress>"
    request = ""
    if request_ids:
        request = "<m:Request>" + "".join(f'<h:ID kind="transaction">{i}</h:ID>' for i in request_ids) + "</m:Request>"
    payload = ""
    if controls:
        payload = ('<m:Payload><c:EndDeviceControls xmlns:c="http://iec.ch/TC57/2011/EndDeviceControls#">'
                   + "".join(controls) + "</c:EndDeviceControls></m:Payload>")
    return (
        f'<m:{verb}EndDeviceControls xmlns:m="http://iec.ch/TC57/2011/EndDeviceControlsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message">'
        f"<m:Header><h:Verb>{verb.lower()}</h:Verb><h:Noun>EndDeviceControls</h:Noun>{extra}"
        f"<h:CorrelationID>{correlation_id}</h:CorrelationID></m:Header>{request}{payload}"
        f"</m:{verb}EndDeviceControls>"
    )


def get_events(*, meters: list[str] = (), types: list[str] = (),  # type: ignore[assignment]
               period: tuple[str, str] | None = None) -> str:
    parts = ['<e:GetEndDeviceEvents xmlns:e="http://iec.ch/TC57/2011/GetEndDeviceEvents#">']
    parts += [f"<e:EndDeviceEventType><e:mRID>{t}</e:mRID></e:EndDeviceEventType>" for t in types]
    parts += [f"<e:Meter><e:mRID>{m}</e:mRID></e:Meter>" for m in meters]
    if period:
        parts.append(f"<e:TimeSchedule><e:scheduleInterval><e:end>{period[1]}</e:end><e:start>{period[0]}</e:start>"
                     "</e:scheduleInterval></e:TimeSchedule>")
    parts.append("</e:GetEndDeviceEvents>")
    return (
        '<m:GetEndDeviceEvents xmlns:m="http://iec.ch/TC57/2011/GetEndDeviceEventsMessage" '
        'xmlns:h="http://iec.ch/TC57/2011/schema/message">'
        "<m:Header><h:Verb>get</h:Verb><h:Noun>EndDeviceEvents</h:Noun><h:CorrelationID>ev-1</h:CorrelationID>"
        f"</m:Header><m:Request>{''.join(parts)}</m:Request></m:GetEndDeviceEvents>"
    )
