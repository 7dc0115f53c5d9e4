// registry page script (issue 16).
