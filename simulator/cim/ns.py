"""Every XML namespace the codec uses, in one place."""

from __future__ import annotations

MSG = "http://iec.ch/TC57/2011/schema/message"

GET_METER_READINGS = "http://iec.ch/TC57/2011/GetMeterReadings#"
METER_READINGS = "http://iec.ch/TC57/2011/MeterReadings#"
GET_METER_READINGS_MSG = "http://iec.ch/TC57/2011/GetMeterReadingsMessage"
METER_READINGS_MSG = "http://iec.ch/TC57/2011/MeterReadingsMessage"

# End-device families. Payload namespaces are 2011 in every public copy; some copies put the
# EndDeviceControls/EndDeviceEvents wrappers in 2017 instead: we emit 2011 and read both.
END_DEVICE_CONTROLS = "http://iec.ch/TC57/2011/EndDeviceControls#"
END_DEVICE_CONTROLS_MSG = "http://iec.ch/TC57/2011/EndDeviceControlsMessage"
END_DEVICE_EVENTS = "http://iec.ch/TC57/2011/EndDeviceEvents#"
END_DEVICE_EVENTS_MSG = "http://iec.ch/TC57/2011/EndDeviceEventsMessage"
GET_END_DEVICE_EVENTS = "http://iec.ch/TC57/2011/GetEndDeviceEvents#"
GET_END_DEVICE_EVENTS_MSG = "http://iec.ch/TC57/2011/GetEndDeviceEventsMessage"

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

XSI = "http://www.w3.org/2001/XMLSchema-instance"
