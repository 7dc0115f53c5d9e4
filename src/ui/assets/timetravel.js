// timetravel page script (issue 16).
