"""The concrete parts behind the shared `EmulatorContext`, as the HTTP handlers reach them.

`EmulatorContext` exposes protocols to the streaming side; the OAuth, REST and control
handlers need the concrete classes (to open sessions, count API calls, arm faults), so the
server keeps both in one bundle stored on the application.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from sftriggerd_emulator.clock import EmulatorClock
from sftriggerd_emulator.context import EmulatorContext
from sftriggerd_emulator.cursors import QueryCursors
from sftriggerd_emulator.faults import FaultRegistry
from sftriggerd_emulator.identity import ConnectedApp, Directory, SessionRegistry
from sftriggerd_emulator.limits import ApiUsage
from sftriggerd_emulator.org import EmulatorOrg
from sftriggerd_emulator.persistence import OrgStore


@dataclass
class EmulatorParts:
    ctx: EmulatorContext
    clock: EmulatorClock
    org: EmulatorOrg
    sessions: SessionRegistry
    faults: FaultRegistry
    usage: ApiUsage
    directory: Directory
    connected_app: ConnectedApp
    cursors: QueryCursors
    store: OrgStore | None


PARTS = web.AppKey("emulator_parts", EmulatorParts)


def parts_of(request: web.Request) -> EmulatorParts:
    return request.config_dict[PARTS]
