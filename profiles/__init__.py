"""IEC 61968-100 / 61968-9 XSD and WSDL profiles shipped as package data (see README.md)."""
