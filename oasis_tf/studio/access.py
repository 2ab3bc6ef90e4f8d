"""Who may use a served studio: a login for anything but the loopback.

Bound to 127.0.0.1 (or ``localhost``, ``::1``) the studio serves only its own
machine. Bound to anything else (``0.0.0.0``, a LAN address, a host name) it serves
everyone who can reach the machine, so it asks for a login: ``--auth FILE`` (or the
environment variable ``OASIS_STUDIO_AUTH`` naming such a file), one ``user:password``
per line (blank lines and lines starting with ``#`` are skipped; the password is
everything after the first colon). Gradio's own authentication then guards the page
and the API (``gradio_client.Client(url, auth=(user, password))``). Without it such
a host is refused unless ``--no_auth`` says it is meant.

The passwords are read from the file only: they never appear on the command line
(``ps``) or in a message (errors name the file and the line number, not the line).
"""

import ipaddress
import os
import socket
import stat

AUTH_ENV = "OASIS_STUDIO_AUTH"


def is_loopback(host):
    """True when ``host`` serves this machine only (127.0.0.0/8, ::1, localhost).
    A name that does not resolve, or resolves to any other address, is not."""
    host = str(host or "").strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    addresses = {info[4][0].split("%")[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def read_auth_file(path):
    """``[(user, password), ...]`` from ``path`` (see the module docstring).

    Raises:
        ValueError: a line that is not ``user:password`` (named by its number), or
            no user at all.
        FileNotFoundError: no such file.
    """
    path = os.fspath(path)
    users = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            user, sep, password = line.partition(":")
            if not sep or not user.strip() or not password:
                raise ValueError(f"--auth {path}: line {number} is not user:password")
            users.append((user.strip(), password))
    if not users:
        raise ValueError(f"--auth {path}: no user:password line")
    return users


def auth_file_warning(path):
    """A warning when the file may be read by other users (else None)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    if mode & 0o077:
        return (f"the --auth file {path} can be read by other users (mode {mode:04o}): "
                f"chmod 600 {path}")
    return None


def check_access(host, auth, no_auth):
    """Refuses to serve ``host`` (not the loopback) without a login.

    Raises:
        ValueError: saying how to add one.
    """
    if auth or no_auth or is_loopback(host):
        return
    raise ValueError(
        f"--host {host} serves the studio to every machine that can reach this one, and "
        f"it has no login: give --auth FILE (one user:password per line; or set "
        f"{AUTH_ENV}=FILE), or --no_auth to serve it without a login on purpose")
