// transfer page script (issue 16).
