// instances page script (issue 16).
