"""`rnn-tui serve`: the same app in a web browser, through textual-serve.

textual-serve starts one process per browser tab and relays its terminal over a websocket, so
each tab trains its own run (recorded like any other), with the training flags given to serve.
It binds to loopback unless told otherwise: whoever can open the page can drive the training.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import socket
import sys
from typing import Callable

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
SERVE_ONLY = {"help", "host", "port", "public_url", "print_config"}
INSTALL_HINT = 'textual-serve is not installed; install it with: pip install "rnn-tui[serve]"'


def add_serve_command(sub: argparse._SubParsersAction,
                      add_train_flags: Callable[..., None]) -> argparse.ArgumentParser:
    """The `serve` subcommand: --host, --port, --public-url, and every training flag."""
    serve = sub.add_parser(
        "serve", help="serve the app in a web browser (textual-serve)",
        description="Serve the app to web browsers: each browser tab trains its own run with "
                    "the training flags given here. Binds to loopback (127.0.0.1) unless --host "
                    "says otherwise; over SSH, forward the port: "
                    "ssh -L 8000:127.0.0.1:8000 HOST.")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"address to listen on (default: {DEFAULT_HOST}, this machine only)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT,
                       help=f"port to listen on (default: {DEFAULT_PORT})")
    serve.add_argument("--public-url", metavar="URL", default=None,
                       help="the address browsers use to reach this server, when it differs "
                            "(a proxy, or a port forward to another port)")
    add_train_flags(serve, suppress=True)
    serve.set_defaults(serve_parser=serve)
    return serve


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"a port is between 1 and 65535, got {value}")
    return value


def app_flags(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """The command-line flags, given before or after `serve`, that each tab's app receives:
    every option of the serve parser that was set, except serve's own."""
    flags: list[str] = []
    for action in parser._actions:
        if not action.option_strings or action.dest in SERVE_ONLY or action.nargs == 0:
            continue
        value = getattr(args, action.dest, None)
        if value is not None:
            flags += [max(action.option_strings, key=len), str(value)]
    return flags


def app_command(flags: list[str]) -> str:
    """The shell command textual-serve runs per tab: this interpreter, this package's app."""
    return shlex.join([sys.executable, "-m", "tui", *flags])


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def public_url(host: str, port: int) -> str:
    """The URL to print and to build the page's websocket address from."""
    host = host.strip("[]")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None and address.is_unspecified:   # 0.0.0.0 or ::, every interface
        host = socket.getfqdn()
    elif address is not None and address.version == 6:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def startup_lines(host: str, port: int, url: str) -> tuple[list[str], str | None]:
    """What serve prints when it listens, and its warning when that is not loopback only."""
    lines = [f"rnn-tui: serving the app on {url}  (each browser tab trains its own run)",
             "Press ctrl+c to stop."]
    warning = None if is_loopback(host) else (
        f"rnn-tui: warning: listening on {host}, not loopback: anyone who can reach port "
        f"{port} can open the app and drive the training")
    return lines, warning


def run_serve(args: argparse.Namespace) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:
        print(f"rnn-tui: error: {INSTALL_HINT}", file=sys.stderr)
        return 2
    url = args.public_url or public_url(args.host, args.port)
    command = app_command(app_flags(args, args.serve_parser))

    class AppServer(Server):
        async def on_startup(self, app) -> None:
            # Our own lines instead of textual-serve's logo.
            lines, warning = startup_lines(args.host, args.port, url)
            if warning:
                print(warning, file=sys.stderr, flush=True)
            print("\n".join(lines), flush=True)

    server = AppServer(command, host=args.host.strip("[]"), port=args.port, title="rnn-tui",
                       public_url=url)
    try:
        server.serve()
    except OSError as e:   # the port is taken, or the address is not this machine's
        print(f"rnn-tui: error: cannot listen on {args.host} port {args.port}: "
              f"{e.strerror or e}", file=sys.stderr)
        return 1
    return 0
