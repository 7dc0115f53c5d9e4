// audit page script (issue 16).
