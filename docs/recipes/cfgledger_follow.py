#!/usr/bin/env python3
"""Keep a file rendered from a cfgledger namespace, for a Python service that cannot run `cfgledger agent`.

Usage:
    CFGLEDGER_TOKEN_FILE=/run/secrets/cfgledger-token \\
    python3 cfgledger_follow.py --server http://cfgledger:4444 --out /app/.env \\
        [--namespace mcpgateway] [--format env|json] [--include-secrets] \\
        [--reload-cmd 'systemctl restart mcpgateway'] [--heartbeat-id gateway-1] [--max-backoff 30] [--once]

The token comes from $CFGLEDGER_TOKEN_FILE (read again on every connection, so a rotated file is picked
up) or $CFGLEDGER_TOKEN, never from the command line. A `config_reader` token may do everything this
needs. Each render is written to a temporary file beside --out (mode 0600, fsynced) and renamed over it;
--reload-cmd then runs (`sh -c`, with $CFGLEDGER_OUT set), only when a value changed. The watch stream is
resumed with Last-Event-ID after every outage; the script never exits because the server is down, and
the last good file stays in place meanwhile. --once renders once and exits (non-zero on failure).
Python 3.11+, standard library only.
"""

import argparse, http.client, json, logging, os, random, signal, socket, subprocess, sys, tempfile
import threading, time, urllib.error, urllib.parse, urllib.request
from datetime import datetime, timezone

log = logging.getLogger("cfgledger_follow")
STREAM_TIMEOUT = 45  # seconds without a byte (the server sends keep-alives every 15 s) before reconnecting
HEARTBEAT_EVERY = 3  # seconds, as the agent does; an instance is listed as live for 10 s after a heartbeat
BACKOFF_MIN = 0.25  # seconds; it doubles after each failure, up to --max-backoff
NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)  # URLError and timeouts are OSErrors
# What the heartbeat reports: the seq and log hash the file answers for, and whether we follow the stream.
# `applied` is one (seq, hash) tuple, so that the heartbeat thread never reads one without the other.
state = {"applied": (0, ""), "stale": True, "stale_since": time.monotonic()}
beat_now = threading.Event()


def request(args, path, query=None, body=None, headers=None, timeout=30):
    """One HTTP request to the server, authorized with the current token; raises on any non-2xx."""
    url = f"{args.server.rstrip('/')}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    headers, data = dict(headers or {}), None if body is None else json.dumps(body).encode()
    token_file = os.environ.get("CFGLEDGER_TOKEN_FILE")
    token = open(token_file).read().strip() if token_file else os.environ.get("CFGLEDGER_TOKEN", "")
    headers |= {"Authorization": f"Bearer {token}"} if token else {}
    headers |= {"Content-Type": "application/json"} if data else {}
    return urllib.request.urlopen(urllib.request.Request(url, data, headers), timeout=timeout)


def values(text):
    """The lines that carry values: a render's header comment names its seq, which alone is no change."""
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def write_atomic(path, text):
    """Stage beside `path` (same file system), fsync, rename over it, fsync the directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, staged = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, path)
    except BaseException:
        os.unlink(staged)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)  # make the rename itself durable
    os.fsync(dir_fd)
    os.close(dir_fd)


def render(args):
    """Fetch the namespace, replace the file if a value changed, then reload; record what it answers for."""
    query = {"namespace": args.namespace, "format": args.format}
    query |= {"include_secrets": "true"} if args.include_secrets else {}
    with request(args, "/admin/config/render", query) as resp:
        seq, head_hash = int(resp.headers["X-Cfgledger-Seq"]), resp.headers["X-Cfgledger-Head-Hash"]
        text = resp.read().decode("utf-8")
    try:
        with open(args.out, encoding="utf-8") as f:
            changed = values(f.read()) != values(text)
    except FileNotFoundError:
        changed = True
    if changed:
        write_atomic(args.out, text)
        log.info("wrote %s at seq %d", args.out, seq)
        if args.reload_cmd:
            env = {k: v for k, v in os.environ.items() if not k.startswith("CFGLEDGER_TOKEN")}
            code = subprocess.run(["sh", "-c", args.reload_cmd], env={**env, "CFGLEDGER_OUT": args.out}).returncode
            if code != 0:
                log.error("the reload command failed (exit %d)", code)
    advance(seq, head_hash)


def advance(seq, head_hash):
    """The file now answers for `seq` (a render's, or a later `progress` that skipped nothing of ours)."""
    if seq > state["applied"][0]:
        state["applied"] = (seq, head_hash)
        beat_now.set()


def sse_events(resp):
    """(event, id, data) for each server-sent event; keep-alive comments are skipped."""
    event, ev_id, data = "message", None, []
    for raw in resp:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield event, ev_id, "\n".join(data)
            event, ev_id, data = "message", None, []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                ev_id = int(value)
            elif field == "data":
                data.append(value)


def follow(args):
    cursor, backoff = None, BACKOFF_MIN
    while True:
        try:
            headers = {"Accept": "text/event-stream"} | ({"Last-Event-ID": str(cursor)} if cursor else {})
            query = {"namespace": args.namespace, "kind": "settings"}
            with request(args, "/admin/config/watch", query, headers=headers, timeout=STREAM_TIMEOUT) as stream:
                log.info("following %s after seq %s", args.server, cursor if cursor else "head")
                # Render on every connection, after the stream is open so nothing falls between the two: the
                # server's environment may have changed while it was down.
                render(args)
                state["stale"], backoff = False, BACKOFF_MIN
                for event, ev_id, data in sse_events(stream):
                    if event == "message":
                        change = json.loads(data)
                        log.info("change seq %d: %s %s", change["seq"], change["kind"], change.get("key") or "")
                        if change["seq"] > state["applied"][0]:  # a render at or after it holds it
                            render(args)
                    elif event == "progress":  # nothing of ours changed up to this seq
                        progress = json.loads(data)
                        advance(progress["seq"], progress["hash"])
                    elif event == "end":
                        log.warning("the server ends the stream: %s", data)
                    cursor = ev_id or cursor
                raise ConnectionError("the server closed the watch stream")
        except urllib.error.HTTPError as e:
            log.warning("the server refused (%d): %s", e.code, e.read().decode("utf-8", "replace")[:300])
            if e.code == 400 and cursor:  # a cursor beyond its head: another or a restored store
                cursor = None
        except NETWORK_ERRORS as e:
            log.warning("cannot follow %s: %s", args.server, e)
        if not state["stale"]:
            state.update(stale=True, stale_since=time.monotonic())
            beat_now.set()
        delay = random.uniform(backoff / 2, backoff)  # jitter, so that a fleet does not reconnect in step
        log.info("retrying in %.1f s; %s keeps its last content", delay, args.out)
        time.sleep(delay)
        backoff = min(backoff * 2, args.max_backoff)


def heartbeat(args):
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    while True:
        (seq, head_hash), stale = state["applied"], state["stale"]
        if head_hash:  # nothing to report before the first render
            report = {"id": args.heartbeat_id, "kind": "client", "namespace": args.namespace, "labels": {},
                      "applied_seq": seq, "head_hash": head_hash, "stale": stale,
                      "staleness_secs": time.monotonic() - state["stale_since"] if stale else 0.0,
                      "origin": "server", "host": socket.gethostname(), "pid": os.getpid(),
                      "version": "cfgledger_follow.py/1", "started_at": started_at}
            try:
                request(args, "/admin/instances/heartbeat", body=report, timeout=10).close()
            except urllib.error.HTTPError as e:
                log.warning("the server refused the heartbeat (%d): %s", e.code, e.read().decode("utf-8", "replace"))
            except NETWORK_ERRORS:
                pass  # the follower reports the outage
        beat_now.wait(HEARTBEAT_EVERY)
        beat_now.clear()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    server = os.environ.get("CFGLEDGER_SERVER")
    p.add_argument("--server", default=server, required=not server, help="http://HOST:PORT ($CFGLEDGER_SERVER)")
    p.add_argument("--out", required=True, help="the file to keep rendered")
    p.add_argument("--namespace", default="mcpgateway")
    p.add_argument("--format", choices=["env", "json"], default="env")
    p.add_argument("--include-secrets", action="store_true", help="render secrets too (each render is audited)")
    p.add_argument("--reload-cmd", help="run with sh -c after the file changed")
    p.add_argument("--heartbeat-id", help="report as client/ID in GET /admin/instances")
    p.add_argument("--max-backoff", type=float, default=30.0, help="longest wait between reconnects, seconds")
    p.add_argument("--once", action="store_true", help="render once and exit")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind, so a staged file is removed
    if args.once:
        try:
            render(args)
        except NETWORK_ERRORS as e:
            sys.exit(f"cfgledger_follow: cannot render {args.namespace}: {e}")
        return
    if args.heartbeat_id:
        threading.Thread(target=heartbeat, args=(args,), daemon=True).start()
    follow(args)


if __name__ == "__main__":
    main()
