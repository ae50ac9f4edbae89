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
