"""Hand-written message samples, realistic enough to exercise every part of the profiles we use.

Each builder returns bytes; keyword arguments swap one fragment so negative samples differ from a
valid one in exactly one respect.
"""

from __future__ import annotations

from simulator.cim import ns

METER_UUID = "9f5a3c1e-2b7d-4e8a-9c41-5d2e7b0a6f13"
UNKNOWN_METER_UUID = "00000000-0000-4000-8000-00000000dead"
RT_15MIN_KWH = "0.0.2.4.1.1.12.0.0.0.0.0.0.0.0.3.72.0"
RT_REGISTER_KWH = "0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0"

NSDECL = (
    f'xmlns:msg="{ns.MSG}" xmlns:mr="{ns.METER_READINGS}" xmlns:gmr="{ns.GET_METER_READINGS}" '
    f'xmlns:mrm="{ns.METER_READINGS_MSG}" xmlns:gmm="{ns.GET_METER_READINGS_MSG}"'
)


def header(verb: str = "get", extra: str = "") -> str:
    return (
        f"<msg:Verb>{verb}</msg:Verb><msg:Noun>MeterReadings</msg:Noun><msg:Revision>2.0</msg:Revision>"
        "<msg:Timestamp>2026-03-10T12:00:00Z</msg:Timestamp><msg:Source>MDMS</msg:Source>"
        "<msg:AsyncReplyFlag>false</msg:AsyncReplyFlag>"
        "<msg:User><msg:UserID>mdms-batch</msg:UserID><msg:Organization>Utility</msg:Organization></msg:User>"
        "<msg:MessageID>6b0c1f52-8a3d-4e5f-9b21-3c4d5e6f7a80</msg:MessageID>"
        "<msg:CorrelationID>c0ffee00-1111-4222-8333-444455556666</msg:CorrelationID>"
        f"{extra}"
    )


def get_query(
    time_period: str = "<gmr:end>2026-03-10T12:00:00Z</gmr:end><gmr:start>2026-03-10T00:00:00Z</gmr:start>",
) -> str:
    """The GetMeterReadings profile document: one meter, one ReadingType, a time range."""
    return (
        "<gmr:GetMeterReadings>"
        f"<gmr:EndDevice><gmr:mRID>{METER_UUID}</gmr:mRID>"
        "<gmr:Names><gmr:name>SIM00000042</gmr:name>"
        "<gmr:NameType><gmr:description>serial</gmr:description><gmr:name>MeterUniqueID</gmr:name></gmr:NameType>"
        "</gmr:Names></gmr:EndDevice>"
        f"<gmr:Reading><gmr:reason>inquiry</gmr:reason><gmr:source>System</gmr:source>"
        f"<gmr:timePeriod>{time_period}</gmr:timePeriod></gmr:Reading>"
        f"<gmr:ReadingType><gmr:mRID>{RT_15MIN_KWH}</gmr:mRID></gmr:ReadingType>"
        "</gmr:GetMeterReadings>"
    )


def get_request(
    verb: str = "get", header_xml: str | None = None, request_id: str = "<gmm:ID>job-17</gmm:ID>"
) -> bytes:
    """Typed {GetMeterReadingsMessage}GetMeterReadings, as a GetMeterReadings client sends it."""
    head = f"<gmm:Header>{header(verb)}</gmm:Header>" if header_xml is None else header_xml
    return (
        f"<gmm:GetMeterReadings {NSDECL}>{head}"
        "<gmm:Request><gmm:StartTime>2026-03-10T00:00:00Z</gmm:StartTime>"
        "<gmm:EndTime>2026-03-10T12:00:00Z</gmm:EndTime>"
        "<gmm:Option><msg:name>resultsPerMessage</msg:name><msg:value>100</msg:value></gmm:Option>"
        f"{request_id}{get_query()}</gmm:Request>"
        "</gmm:GetMeterReadings>"
    ).encode()


def meter_readings(reading_type_ref: str = f' ref="{RT_15MIN_KWH}"') -> str:
    """A MeterReadings document: 15-min interval block with a gap flag, a register read, code lists."""
    intervals = "".join(
        f"<mr:IntervalReadings><mr:timeStamp>2026-03-10T00:{m:02d}:00Z</mr:timeStamp><mr:value>{v}</mr:value>"
        "</mr:IntervalReadings>"
        for m, v in ((15, 231), (30, 198), (45, 205))
    )
    gap = (
        "<mr:IntervalReadings><mr:timeStamp>2026-03-10T01:00:00Z</mr:timeStamp><mr:value>0</mr:value>"
        "<mr:ReadingQualities><mr:comment>meter unreachable</mr:comment>"
        '<mr:ReadingQualityType ref="2.5.259"/></mr:ReadingQualities></mr:IntervalReadings>'
    )
    return (
        "<mr:MeterReadings>"
        "<mr:MeterReading>"
        f"<mr:IntervalBlocks>{intervals}{gap}<mr:ReadingType{reading_type_ref}/></mr:IntervalBlocks>"
        f"<mr:Meter><mr:mRID>{METER_UUID}</mr:mRID><mr:Names><mr:name>SIM00000042</mr:name></mr:Names></mr:Meter>"
        "<mr:Readings><mr:reason>inquiry</mr:reason><mr:timeStamp>2026-03-10T01:00:00Z</mr:timeStamp>"
        f'<mr:value>48211</mr:value><mr:ReadingType ref="{RT_REGISTER_KWH}"/></mr:Readings>'
        "<mr:UsagePoint><mr:mRID>UP-000042</mr:mRID></mr:UsagePoint>"
        "<mr:valuesInterval><mr:end>2026-03-10T01:00:00Z</mr:end><mr:start>2026-03-10T00:00:00Z</mr:start>"
        "</mr:valuesInterval>"
        "</mr:MeterReading>"
        "<mr:ReadingQualityType><mr:mRID>2.5.259</mr:mRID><mr:category>5</mr:category>"
        "<mr:subCategory>259</mr:subCategory><mr:systemId>2</mr:systemId>"
        "<mr:Names><mr:name>known missing read</mr:name></mr:Names></mr:ReadingQualityType>"
        f"<mr:ReadingType><mr:mRID>{RT_15MIN_KWH}</mr:mRID><mr:accumulation>4</mr:accumulation>"
        "<mr:commodity>1</mr:commodity><mr:flowDirection>1</mr:flowDirection><mr:macroPeriod>0</mr:macroPeriod>"
        "<mr:measurementKind>12</mr:measurementKind><mr:measuringPeriod>2</mr:measuringPeriod>"
        "<mr:multiplier>3</mr:multiplier><mr:unit>72</mr:unit>"
        "<mr:argument><mr:denominator>0</mr:denominator><mr:numerator>0</mr:numerator></mr:argument>"
        "<mr:Names><mr:name>15-min delta A+ (kWh)</mr:name></mr:Names></mr:ReadingType>"
        "</mr:MeterReadings>"
    )


def unknown_meter_reply(result: str = "PARTIAL", xpath: str = "") -> str:
    """A Reply naming one meter that could not be read (code 2.4, ID kind=uuid objectType=EndDevice)."""
    return (
        f"<msg:Result>{result}</msg:Result>"
        "<msg:Error><msg:code>0.2</msg:code><msg:level>INFORM</msg:level>"
        "<msg:reason>partial result, no further results follow</msg:reason></msg:Error>"
        "<msg:Error><msg:code>2.4</msg:code><msg:level>WARNING</msg:level>"
        f"<msg:reason>invalid Meter</msg:reason><msg:details>no such meter in the fleet</msg:details>{xpath}"
        f'<msg:ID kind="uuid" objectType="EndDevice">{UNKNOWN_METER_UUID}</msg:ID></msg:Error>'
    )


def meter_readings_response(wrapper_ns: str = "gmm", result: str = "PARTIAL", verb: str = "reply") -> bytes:
    """<wrapper>:MeterReadingsResponseMessage with readings and a per-meter error."""
    w = wrapper_ns
    return (
        f"<{w}:MeterReadingsResponseMessage {NSDECL}>"
        f"<{w}:Header>{header(verb)}</{w}:Header>"
        f"<{w}:Reply>{unknown_meter_reply(result)}</{w}:Reply>"
        f"<{w}:Payload>{meter_readings()}<{w}:Format>XML</{w}:Format></{w}:Payload>"
        f"</{w}:MeterReadingsResponseMessage>"
    ).encode()


def created_meter_readings(message_index: str = "1/1") -> bytes:
    """{MeterReadingsMessage}CreatedMeterReadings: an asynchronous result or a push."""
    prop = (
        "<msg:Property><msg:Name>MessageIndex</msg:Name>"
        f"<msg:Value>{message_index}</msg:Value></msg:Property>"
    )
    return (
        f"<mrm:CreatedMeterReadings {NSDECL}>"
        f"<mrm:Header>{header('created', prop)}</mrm:Header>"
        f"<mrm:Payload>{meter_readings()}</mrm:Payload>"
        "</mrm:CreatedMeterReadings>"
    ).encode()


def typed_fault(wrapper_ns: str = "gmm") -> bytes:
    w = wrapper_ns
    return (
        f"<{w}:MeterReadingsFaultMessage {NSDECL}><{w}:Reply><msg:Result>FAILED</msg:Result>"
        "<msg:Error><msg:code>1.8</msg:code><msg:level>FATAL</msg:level>"
        "<msg:reason>request fails schema validation</msg:reason>"
        "<msg:xpath>gmm:Header</msg:xpath>"
        "<msg:Location><msg:node>hes-sim</msg:node><msg:stage>validate</msg:stage></msg:Location>"
        f"</msg:Error></{w}:Reply></{w}:MeterReadingsFaultMessage>"
    ).encode()


def fault_message(result: str = "FAILED") -> bytes:
    """Generic msg:FaultMessage: answer to input whose Header could not be read."""
    return (
        f"<msg:FaultMessage {NSDECL}><msg:Reply><msg:Result>{result}</msg:Result>"
        "<msg:Error><msg:code>1.5</msg:code><msg:level>FATAL</msg:level>"
        "<msg:reason>mandatory Header element missing</msg:reason></msg:Error>"
        "</msg:Reply></msg:FaultMessage>"
    ).encode()


def request_message(verb: str = "get", with_header: bool = True) -> bytes:
    """Generic msg:RequestMessage carrying the GetMeterReadings query in Request."""
    head = f"<msg:Header>{header(verb)}</msg:Header>" if with_header else ""
    return (
        f"<msg:RequestMessage {NSDECL}>{head}"
        "<msg:Request><msg:StartTime>2026-03-10T00:00:00Z</msg:StartTime>"
        "<msg:Option><msg:name>ping</msg:name></msg:Option>"
        f'<msg:ID kind="uuid" objectType="EndDevice">{METER_UUID}</msg:ID>'
        f"{get_query()}</msg:Request>"
        "</msg:RequestMessage>"
    ).encode()


def response_message(result: str = "OK") -> bytes:
    """Generic msg:ResponseMessage with the MeterReadings document in a skip-validated Payload."""
    return (
        f"<msg:ResponseMessage {NSDECL}><msg:Header>{header('reply')}</msg:Header>"
        f"<msg:Reply><msg:Result>{result}</msg:Result><msg:Error><msg:code>0.0</msg:code></msg:Error>"
        '<msg:ID kind="transaction">job-17</msg:ID></msg:Reply>'
        f"<msg:Payload>{meter_readings()}<msg:Format>XML</msg:Format></msg:Payload>"
        "</msg:ResponseMessage>"
    ).encode()


def event_message() -> bytes:
    """Generic msg:EventMessage: a push of created MeterReadings, one part of one."""
    prop = "<msg:Property><msg:Name>MessageIndex</msg:Name><msg:Value>1/1</msg:Value></msg:Property>"
    return (
        f"<msg:EventMessage {NSDECL}><msg:Header>{header('created', prop)}</msg:Header>"
        f"<msg:Payload>{meter_readings()}</msg:Payload></msg:EventMessage>"
    ).encode()


def cancel_by_id() -> bytes:
    """Generic cancel with the object named in Payload/ID (no typed payload)."""
    return (
        f"<msg:RequestMessage {NSDECL}><msg:Header>{header('cancel')}</msg:Header>"
        '<msg:Payload><msg:ID kind="transaction" idType="jobId">job-17</msg:ID></msg:Payload>'
        "</msg:RequestMessage>"
    ).encode()
