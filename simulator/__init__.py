"""hes-sim: a meter head-end simulator speaking IEC 61968-9 over IEC 61968-100."""
