"""The `daodi` command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ledger.errors import LedgerError


def _serve(args: argparse.Namespace) -> int:
    from services.app import create_app, serve
    from services.settings import Settings

    serve(create_app(Settings()), args.host, args.port, log_level="info")
    return 0


def _ledger_verify(args: argparse.Namespace) -> int:
    from services.audit_cli import verify_command

    return verify_command(url=args.url, db=args.db, vkey=args.vkey)


def _monitor(args: argparse.Namespace) -> int:
    from services.audit_cli import monitor_command

    return monitor_command(
        url=args.url, state=args.state, vkey=args.vkey, once=args.once, interval=args.interval
    )


def _labels_issue(args: argparse.Namespace) -> int:
    from services.labels.cli import issue_command

    return issue_command(
        herb=args.herb, form=args.form, count=args.count, out=args.out, kind=args.kind, org=args.org
    )


def _verify_label(args: argparse.Namespace) -> int:
    from services.labels.cli import verify_command

    return verify_command(args.label, url=args.url, keys_file=args.keys, bundle_file=args.bundle)


def _keys_show(args: argparse.Namespace) -> int:
    import json

    from services.keys import KeyRing
    from services.settings import Settings

    settings = Settings()
    keys = KeyRing.load(settings.key_dir, settings.log_origin)
    public = {"log": [keys.log.verifier_key()], "labels": {}, "witnesses": [], "devices": {}}
    if args.json:
        print(json.dumps(public, indent=2))
    else:
        for vkey in public["log"]:
            print(f"log      {vkey}")
    return 0


def _witness_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    import uvicorn

    from services.witness.app import build_witness, create_witness_app

    witness = build_witness(args.name, Path(args.state), args.log)
    print(f"witness {witness.signer.verifier_key()}", flush=True)
    uvicorn.run(create_witness_app(witness), host=args.host, port=args.port, log_level="info")
    return 0


def _edge(args: argparse.Namespace) -> int:
    from edge.gateway import run_gateway
    from services.settings import Settings

    return run_gateway(Settings())


def _simulate(args: argparse.Namespace) -> int:

    from edge.simulator import run_simulator
    from services.settings import Settings

    settings = Settings()
    if settings.mqtt_url is None:
        print("daodi simulate: set DAODI_MQTT_URL", file=sys.stderr)
        return 2
    return run_simulator(settings.mqtt_url, settings.key_dir, settings.device_roster, args.devices, args.rate)


def _demo(args: argparse.Namespace) -> int:
    from services.demo import run_demo

    return run_demo(host=args.host, port=args.port)


def parser() -> argparse.ArgumentParser:
    """The argument parser of `daodi`."""
    top = argparse.ArgumentParser(prog="daodi", description="Daodi Trace: verifiable herb traceability")
    sub = top.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="run the whole platform on embedded defaults")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.set_defaults(func=_demo)

    serve = sub.add_parser("serve", help="run the HTTP app only")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    edge = sub.add_parser("edge", help="MQTT gateway: field sensor readings into the ledger")
    edge.set_defaults(func=_edge)

    simulate = sub.add_parser("simulate", help="sensor simulator on the demo plots")
    simulate.add_argument("--devices", type=int, default=9, help="number of devices (spread over the plots)")
    simulate.add_argument("--rate", type=float, default=3.0, help="readings per second, all devices together")
    simulate.set_defaults(func=_simulate)

    ledger = sub.add_parser("ledger", help="ledger tools").add_subparsers(
        dest="ledger_command", required=True
    )
    verify = ledger.add_parser("verify", help="full independent audit of the log")
    source = verify.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="base URL of a Daodi Trace server (reads its public API)")
    source.add_argument("--db", help="database URL (sqlite:///path or postgresql://...)")
    verify.add_argument(
        "--vkey", action="append", help="trusted log verifier key (repeatable); default: fetched or local"
    )
    verify.set_defaults(func=_ledger_verify)

    monitor = sub.add_parser("monitor", help="follow a log and alert on rewrites and split views")
    monitor.add_argument("--url", required=True, help="base URL of the log")
    monitor.add_argument(
        "--state", default="var/monitor.json", help="where the monitor keeps what it verified"
    )
    monitor.add_argument("--vkey", action="append", help="trusted log verifier key (repeatable)")
    monitor.add_argument("--once", action="store_true", help="one pass; exit 1 on any alert")
    monitor.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    monitor.set_defaults(func=_monitor)

    labels = sub.add_parser("labels", help="QR labels").add_subparsers(dest="labels_command", required=True)
    issue = labels.add_parser("issue", help="pre-issue signed labels: DIR/sheet.pdf, PNG + SVG each, URIs")
    issue.add_argument("--herb", required=True, help="herb id, e.g. xiakucao")
    issue.add_argument("--form", required=True, help="form id of that herb")
    issue.add_argument("--count", type=int, required=True)
    issue.add_argument("--out", required=True, help="output directory")
    issue.add_argument("--kind", choices=["field", "carton"], default="field")
    issue.add_argument("--org", help="USCC of the owning organisation (default: the platform operator)")
    issue.set_defaults(func=_labels_issue)

    vlabel = sub.add_parser("verify-label", help="verify one label (URI or PNG) against the published keys")
    vlabel.add_argument("label", help="label URI, or an image file holding its QR code")
    vlabel.add_argument("--url", help="server whose /api/v1/keys to trust (default: the label's own base)")
    vlabel.add_argument("--keys", help="offline: a saved /api/v1/keys JSON document")
    vlabel.add_argument("--bundle", help="offline: a saved /api/v1/verify/{lot}/bundle JSON document")
    vlabel.set_defaults(func=_verify_label)

    keys = sub.add_parser("keys", help="public keys").add_subparsers(dest="keys_command", required=True)
    show = keys.add_parser("show", help="print public keys")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_keys_show)
    witness = sub.add_parser("witness", help="a regulator's witness").add_subparsers(
        dest="witness_command", required=True
    )
    wserve = witness.add_parser("serve", help="run a C2SP tlog-witness with its own key and state")
    wserve.add_argument("--name", default="witness.daodi.dev/regulator", help="witness key name")
    wserve.add_argument("--state", default="var/witness", help="directory for the key and state")
    wserve.add_argument("--log", action="append", required=True, help="verifier key of a log to follow")
    wserve.add_argument("--host", default="127.0.0.1")
    wserve.add_argument("--port", type=int, default=8100)
    wserve.set_defaults(func=_witness_serve)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `daodi` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except LedgerError as exc:
        print(f"daodi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
