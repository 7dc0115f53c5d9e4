// rollback page script (issue 16).
