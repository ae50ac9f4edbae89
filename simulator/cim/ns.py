"""Every XML namespace the codec uses, in one place."""

from __future__ import annotations

MSG = "http://iec.ch/TC57/2011/schema/message"

GET_METER_READINGS = "http://iec.ch/TC57/2011/GetMeterReadings#"
METER_READINGS = "http://iec.ch/TC57/2011/MeterReadings#"
GET_METER_READINGS_MSG = "http://iec.ch/TC57/2011/GetMeterReadingsMessage"
METER_READINGS_MSG = "http://iec.ch/TC57/2011/MeterReadingsMessage"

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

XSI = "http://www.w3.org/2001/XMLSchema-instance"
