"""hes-sim: a meter head-end simulator speaking IEC 61968-9 in the IEC 61968-100 envelope."""

__version__ = "0.1.0"
