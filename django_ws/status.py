"""WebSocket close codes (RFC 6455, section 7.4.1) and the ones django-ws sends.

Every close that django-ws initiates uses one of these constants, so the README's
error table and the code cannot drift apart.
"""

from __future__ import annotations

WS_1000_NORMAL_CLOSURE = 1000
WS_1001_GOING_AWAY = 1001
WS_1002_PROTOCOL_ERROR = 1002
WS_1003_UNSUPPORTED_DATA = 1003
WS_1005_NO_STATUS_RECEIVED = 1005
WS_1006_ABNORMAL_CLOSURE = 1006
WS_1007_INVALID_FRAME_PAYLOAD_DATA = 1007
WS_1008_POLICY_VIOLATION = 1008
WS_1009_MESSAGE_TOO_BIG = 1009
WS_1010_MANDATORY_EXTENSION = 1010
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
WS_1013_TRY_AGAIN_LATER = 1013


def portable_close_code(code: int) -> int | None:
    """Return what to send instead of ``code`` to a server that refuses it, or ``None``.

    The WebSocket RFC lets a server send any code it defines, but some stacks only
    send 1000 and 3000-4999 (daphne, through autobahn, raises for the rest). There
    django-ws sends ``4000 + (code - 1000)``: 1008 becomes 4008, 1011 becomes 4011,
    so the last three digits still say what happened.
    """
    if code == WS_1000_NORMAL_CLOSURE or 3000 <= code <= 4999:
        return None
    return 4000 + code - 1000
