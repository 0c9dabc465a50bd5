"""``hposerve admin ...``: bootstrap the first operator, then administer a server over gRPC.

``hposerve admin init`` writes to the identity store directly (it is how the first operator
comes to be) and prints that operator's token once. Every other command talks to a running
server's AdminService (``--target``), authenticated by ``--token`` or ``HPOSERVE_TOKEN``.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format, message_factory
from google.protobuf.message import Message

from hposerve.server.storage._identity import IdentityStore
from hposerve.v1 import admin_service_pb2 as apb

__all__ = ["add_arguments", "parse_duration"]

DEFAULT_TARGET = "127.0.0.1:50051"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ROLES = ("viewer", "editor", "admin")
_SERVICE = apb.DESCRIPTOR.services_by_name["AdminService"]


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``12h`` or ``30d``."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (try 3600, 15m, 12h, 30d)")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


def _role(name: str | None) -> Any:
    return apb.Role.Value(name.upper()) if name else apb.ROLE_UNSPECIFIED


def _is_loopback(target: str) -> bool:
    host = target.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _channel(args: argparse.Namespace) -> grpc.Channel:
    if args.tls_ca or args.tls:
        roots = open(args.tls_ca, "rb").read() if args.tls_ca else None  # noqa: SIM115
        return grpc.secure_channel(args.target, grpc.ssl_channel_credentials(roots))
    if not _is_loopback(args.target) and not args.insecure:
        raise SystemExit(
            f"refusing to send a token in plaintext to {args.target}: use --tls (or --tls-ca "
            "FILE), or --insecure if the network is trusted"
        )
    return grpc.insecure_channel(args.target)


def _call(args: argparse.Namespace, method: str, request: Message) -> Any:
    token = args.token or os.environ.get("HPOSERVE_TOKEN", "")
    if not token:
        raise SystemExit("no token: pass --token or set HPOSERVE_TOKEN")
    # A plain multicallable from the service's descriptor: the stubs are the transport's and
    # the client's (an AdminClient in hposerve.client can take this over).
    answer_type = message_factory.GetMessageClass(_SERVICE.methods_by_name[method].output_type)
    with _channel(args) as channel:
        call = channel.unary_unary(
            f"/{_SERVICE.full_name}/{method}",
            request_serializer=type(request).SerializeToString,
            response_deserializer=answer_type.FromString,
        )
        try:
            return call(
                request, timeout=args.timeout, metadata=[("authorization", f"Bearer {token}")]
            )
        except grpc.RpcError as e:
            raise SystemExit(f"{method} failed: {e.code().name}: {e.details()}") from None


def _show(message: Message) -> None:
    print(json_format.MessageToJson(message, indent=2))


def _issued(answer: apb.IssuedToken) -> int:
    """Prints a new token's secret alone on stdout (for scripts), the rest on stderr."""
    print(json_format.MessageToJson(answer.token, indent=2), file=sys.stderr)
    print("this token is shown once; keep it secret:", file=sys.stderr)
    print(answer.secret)
    return 0


def init(args: argparse.Namespace) -> int:
    """Makes ``args.name`` an operator in the identity store and prints a new token for it."""
    store = IdentityStore.open(args.storage, data_dir=args.data_dir, url=args.identity_storage)
    try:
        store.directory.ensure_principal(args.name, operator=True)
        info, secret = store.tokens.issue_token(
            args.name, ttl=args.ttl, description=args.description
        )
    finally:
        store.close()
    print(f"{args.name} is an operator; its token {info.name} is shown once:", file=sys.stderr)
    print(secret)
    return 0


Handler = Callable[[Any], int]


def _shown(answer: Message) -> int:
    _show(answer)
    return 0


# command -> (help, its arguments, the RPC and request it makes from the parsed arguments)
_ROLE_ARG = (("--role",), {"choices": _ROLES, "help": "viewer, editor or admin"})
_TTL_ARG = (("--ttl",), {"type": parse_duration, "help": "lifetime: 3600, 15m, 12h, 30d"})
_DESCRIPTION_ARG = (("--description",), {"default": ""})
_REQUEST_ID_ARG = (("--request-id",), {"default": "", "help": "retry-safe id of this request"})
_COMMANDS: dict[str, tuple[str, list[Any], Callable[[Any], tuple[str, Message]]]] = {
    "whoami": ("who the token is", [], lambda a: ("WhoAmI", apb.WhoAmIRequest())),
    "create-team": (
        "create a team (operators)",
        [(("team_id",), {}), _REQUEST_ID_ARG],
        lambda a: (
            "CreateTeam",
            apb.CreateTeamRequest(team_id=a.team_id, request_id=a.request_id),
        ),
    ),
    "list-teams": (
        "list teams",
        [],
        lambda a: ("ListTeams", apb.ListTeamsRequest(page_size=1000)),
    ),
    "add-member": (
        "add a principal to a team, or change its role",
        [
            (("team",), {}),
            (("principal",), {}),
            (_ROLE_ARG[0], {**_ROLE_ARG[1], "required": True}),
            _REQUEST_ID_ARG,
        ],
        lambda a: (
            "AddMember",
            apb.AddMemberRequest(
                team=_team(a.team),
                principal=a.principal,
                role=_role(a.role),
                request_id=a.request_id,
            ),
        ),
    ),
    "remove-member": (
        "remove a principal from a team",
        [(("team",), {}), (("principal",), {}), _REQUEST_ID_ARG],
        lambda a: (
            "RemoveMember",
            apb.RemoveMemberRequest(
                team=_team(a.team), principal=a.principal, request_id=a.request_id
            ),
        ),
    ),
    "list-members": (
        "list a team's members",
        [(("team",), {})],
        lambda a: ("ListMembers", apb.ListMembersRequest(team=_team(a.team))),
    ),
    "create-service-account": (
        "create a service account of a team",
        [
            (("team",), {}),
            (("service_account_id",), {}),
            _ROLE_ARG,
            _DESCRIPTION_ARG,
            _REQUEST_ID_ARG,
        ],
        lambda a: (
            "CreateServiceAccount",
            apb.CreateServiceAccountRequest(
                team=_team(a.team),
                service_account_id=a.service_account_id,
                role=_role(a.role),
                description=a.description,
                request_id=a.request_id,
            ),
        ),
    ),
    "issue-token": (
        "issue a token for a principal (prints the secret once)",
        [(("principal",), {}), _TTL_ARG, _DESCRIPTION_ARG, _REQUEST_ID_ARG],
        lambda a: (
            "IssueToken",
            apb.IssueTokenRequest(
                principal=a.principal,
                ttl=_duration(a.ttl),
                description=a.description,
                request_id=a.request_id,
            ),
        ),
    ),
    "revoke-token": (
        "revoke a token or share link by name",
        [(("name",), {}), _REQUEST_ID_ARG],
        lambda a: ("RevokeToken", apb.RevokeTokenRequest(name=a.name, request_id=a.request_id)),
    ),
    "list-tokens": (
        "list a principal's tokens, or a study's share links",
        [
            (("parent",), {}),
            (("--all",), {"action": "store_true", "help": "revoked and expired too"}),
        ],
        lambda a: ("ListTokens", apb.ListTokensRequest(parent=a.parent, show_inactive=a.all)),
    ),
    "create-namespace": (
        "create a namespace owned by a team (operators)",
        [(("namespace_id",), {}), (("--team",), {"required": True}), _REQUEST_ID_ARG],
        lambda a: (
            "CreateNamespace",
            apb.CreateNamespaceRequest(
                namespace_id=a.namespace_id, team=_team(a.team), request_id=a.request_id
            ),
        ),
    ),
    "list-namespaces": (
        "list the namespaces you may see",
        [],
        lambda a: ("ListNamespaces", apb.ListNamespacesRequest(page_size=1000)),
    ),
    "share": (
        "share a study with another team",
        [
            (("study",), {}),
            (("team",), {}),
            (("--role",), {"choices": _ROLES[:2], "required": True}),
            _REQUEST_ID_ARG,
        ],
        lambda a: (
            "ShareStudy",
            apb.ShareStudyRequest(
                study=a.study, team=_team(a.team), role=_role(a.role), request_id=a.request_id
            ),
        ),
    ),
    "unshare": (
        "end a study's share with a team",
        [(("study",), {}), (("team",), {}), _REQUEST_ID_ARG],
        lambda a: (
            "UnshareStudy",
            apb.UnshareStudyRequest(study=a.study, team=_team(a.team), request_id=a.request_id),
        ),
    ),
    "list-shares": (
        "list the shares of a study or namespace",
        [(("parent",), {})],
        lambda a: ("ListShares", apb.ListSharesRequest(parent=a.parent)),
    ),
    "share-link": (
        "issue a token for one study and role, with an expiry (prints the secret once)",
        [
            (("study",), {}),
            (("--role",), {"choices": _ROLES[:2], "default": "viewer"}),
            _TTL_ARG,
            _DESCRIPTION_ARG,
            _REQUEST_ID_ARG,
        ],
        lambda a: (
            "IssueShareToken",
            apb.IssueShareTokenRequest(
                study=a.study,
                role=_role(a.role),
                ttl=_duration(a.ttl),
                description=a.description,
                request_id=a.request_id,
            ),
        ),
    ),
    "set-quota": (
        "set a namespace's quotas; an option left out takes the server's default (operators)",
        [
            (("namespace",), {}),
            (("--studies",), {"type": int, "help": "studies at most (0: no limit)"}),
            (("--running-trials",), {"type": int, "help": "running trials at most (0: none)"}),
            (("--asks-per-second",), {"type": float, "help": "asks per second (0: no limit)"}),
            _REQUEST_ID_ARG,
        ],
        lambda a: (
            "SetQuota",
            apb.SetQuotaRequest(
                quota=apb.Quota(
                    name=_quota(a.namespace),
                    max_studies=a.studies,
                    max_running_trials=a.running_trials,
                    max_asks_per_second=a.asks_per_second,
                ),
                request_id=a.request_id,
            ),
        ),
    ),
    "get-quota": (
        "show the quotas in effect for a namespace",
        [(("namespace",), {})],
        lambda a: ("GetQuota", apb.GetQuotaRequest(name=_quota(a.namespace))),
    ),
    "audit": (
        "read the audit log, newest first",
        [(("--namespace",), {"default": ""}), (("--limit",), {"type": int, "default": 100})],
        lambda a: (
            "ReadAudit",
            apb.ReadAuditRequest(
                parent=f"namespaces/{a.namespace}" if a.namespace else "", page_size=a.limit
            ),
        ),
    ),
}


def _team(name: str) -> str:
    return name if name.startswith("teams/") else f"teams/{name}"


def _quota(namespace: str) -> str:
    name = namespace if namespace.startswith("namespaces/") else f"namespaces/{namespace}"
    return f"{name}/quota"


def _remote(build: Any) -> Handler:
    def run(args: argparse.Namespace) -> int:
        method, request = build(args)
        answer = _call(args, method, request)
        return _issued(answer) if isinstance(answer, apb.IssuedToken) else _shown(answer)

    return run


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``init`` and the server commands under ``parser`` (the ``admin`` command)."""
    commands = parser.add_subparsers(dest="admin_command", required=True)
    boot = commands.add_parser("init", help="make the first operator and print its token once")
    where = boot.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", help="the data directory of an embedded-default server")
    where.add_argument("--storage", help="the storage URL the server runs on")
    where.add_argument("--identity-storage", help="the server's --identity-storage URL")
    boot.add_argument("--name", default="users/admin", help="the operator (default: %(default)s)")
    boot.add_argument("--ttl", type=parse_duration, help="token lifetime (default: no expiry)")
    boot.add_argument("--description", default="hposerve admin init")
    boot.set_defaults(run=init)
    for name, (help_text, arguments, build) in _COMMANDS.items():
        sub = commands.add_parser(name, help=help_text)
        for flags, options in arguments:
            sub.add_argument(*flags, **options)
        _add_connection_arguments(sub)
        sub.set_defaults(run=_remote(build))


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--target",
        default=os.environ.get("HPOSERVE_TARGET", DEFAULT_TARGET),
        help="host:port of the server (HPOSERVE_TARGET; default: %(default)s)",
    )
    parser.add_argument("--token", help="a token (default: HPOSERVE_TOKEN)")
    parser.add_argument(
        "--tls", action="store_true", help="TLS with the system's root certificates"
    )
    parser.add_argument("--tls-ca", help="TLS, trusting this CA certificate file")
    parser.add_argument(
        "--insecure", action="store_true", help="allow plaintext to a non-loopback target"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
